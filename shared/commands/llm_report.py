"""`python -m shared llm-report`: how large the LLM prompts are, and what they would cost, on a labeled set.

Each failure of the set (default: the developers' dev set when present, else the first in tests/data/) is
classified by the rules and pushed through the analyzer's prompt builder. Printed: the estimated prompt tokens
(characters / 3, the bound's own measure), and with --fake the prompt tokens a local Azure OpenAI fake reports
(characters / 4, about a BPE tokenizer on English) after a real round trip through the openai client; how many
prompts were trimmed to fit; how many failures the rules would send to the LLM at the configured threshold; and
the cost at the configured prices. The fake is a stand-in: real usage.prompt_tokens come from `python -m shared
decisions --json`.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[2]
# The developers' dev set when it is beside the repository, else the first labeled set that ships with it.
_DEV_SET = _ROOT.parent / "shared" / "eval" / "dev.jsonl"
_SHIPPED = sorted((_ROOT / "tests" / "data").glob("*.jsonl"))
DEFAULT_SET = _DEV_SET if _DEV_SET.exists() or not _SHIPPED else _SHIPPED[0]
CONTEXT = {"job_name": "nightly_etl", "tasks": ["main"], "attempt": 1,
           "cluster": {"node_type_id": "Standard_DS3_v2", "num_workers": 4, "spark_version": "15.4.x-scala2.12"}}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--file", type=Path, default=DEFAULT_SET, help="JSON lines with text and result_state "
                        "(default: the developers' dev set when present, else the first set in tests/data/)")
    parser.add_argument("--fake", action="store_true",
                        help="also send every prompt to a local Azure OpenAI fake and report its usage figures")
    parser.add_argument("--max-prompt-tokens", type=int, default=None,
                        help="the bound to build prompts with (default LLM_MAX_PROMPT_TOKENS)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")


def run(args: argparse.Namespace) -> int:
    from shared.llm import failure_prompt
    from shared.llm.cost import Prices, cost_usd
    from shared.redaction import redact
    from shared.settings import load_settings

    settings = load_settings(require=())
    bound = args.max_prompt_tokens or settings.llm_max_prompt_tokens
    try:
        records = [json.loads(line) for line in args.file.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as exc:
        print(f"cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    classify, classifier = _classifier()

    prompts, asked = [], 0
    for record in records:
        signals, classification = classify(record)
        prompts.append(failure_prompt(signals, classification, CONTEXT, max_prompt_tokens=bound, redact=redact))
        threshold = settings.llm_confidence_threshold
        asked += classification.category.value == "unknown" or classification.confidence < threshold

    figures: dict[str, Any] = {
        "set": str(args.file), "failures": len(records), "classifier": classifier, "max_prompt_tokens": bound,
        "estimated_prompt_tokens": _spread([p.estimated_tokens for p in prompts]),
        "trimmed": sum(p.trimmed for p in prompts),
        "asked_at_threshold": {"threshold": settings.llm_confidence_threshold, "asked": asked},
    }
    prices = Prices.from_settings(settings)
    if args.fake:
        usage = _through_fake(prompts)
        figures["fake_prompt_tokens"] = _spread([u[0] for u in usage])
        figures["fake_completion_tokens"] = _spread([u[1] for u in usage])
        costs = [cost_usd(p, c, prices) for p, c in usage]
        figures["cost_usd_per_call"] = _spread(costs, digits=6)
        figures["cost_usd_for_the_asked"] = round(statistics.mean(costs) * asked, 4) if costs else 0.0
    figures["prices_per_1k"] = {"prompt": prices.prompt_per_1k, "completion": prices.completion_per_1k}

    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(_format(figures))
    return 0


def _classifier():
    """classify(record) -> (signals, classification), by the rules."""
    from shared.classify import FailureSignals, classify

    def rules(record: dict[str, Any]):
        signals = FailureSignals(text=record["text"], result_state=record.get("result_state"))
        return signals, classify(signals)

    return rules, "rules (shared.classify)"


def _through_fake(prompts: list[Any]) -> list[tuple[int, int]]:
    """(prompt_tokens, completion_tokens) the fake reports for each prompt, via the real openai client."""
    from localdev.fakes.openai_server import FAKE_API_KEY, FakeAzureOpenAI
    from shared.llm.client import ChatClient

    with FakeAzureOpenAI() as fake:
        client = ChatClient(endpoint=fake.endpoint, deployment=fake.deployments[0], api_version="2024-10-21",
                            timeout_seconds=10, max_completion_tokens=500, api_key=lambda: FAKE_API_KEY)
        out = []
        for prompt in prompts:
            completion = client.complete(prompt.messages)
            out.append((completion.prompt_tokens, completion.completion_tokens))
        return out


def _spread(values: list[float], digits: int = 0) -> dict[str, float]:
    if not values:
        return {"median": 0, "p90": 0, "max": 0}
    ordered = sorted(values)
    p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]

    def r(v: float) -> float:
        return round(v, digits) if digits else int(round(v))

    return {"median": r(statistics.median(ordered)), "p90": r(p90), "max": r(ordered[-1])}


def _format(f: dict[str, Any]) -> str:
    lines = [f"{f['failures']} failures from {f['set']}", f"classifier: {f['classifier']}",
             f"bound: LLM_MAX_PROMPT_TOKENS={f['max_prompt_tokens']} (estimated tokens)", "",
             f"{'prompt tokens':<34}{'median':>8}{'p90':>8}{'max':>8}"]

    def row(label: str, s: dict[str, float]) -> str:
        return f"{label:<34}{s['median']:>8}{s['p90']:>8}{s['max']:>8}"

    lines.append(row("estimate (characters / 3)", f["estimated_prompt_tokens"]))
    if "fake_prompt_tokens" in f:
        lines.append(row("fake usage.prompt_tokens (chars/4)", f["fake_prompt_tokens"]))
        lines.append(row("fake usage.completion_tokens", f["fake_completion_tokens"]))
    lines += ["", f"trimmed to the bound: {f['trimmed']} of {f['failures']}",
              f"sent to the LLM at LLM_CONFIDENCE_THRESHOLD={f['asked_at_threshold']['threshold']}: "
              f"{f['asked_at_threshold']['asked']} of {f['failures']}"]
    if "cost_usd_per_call" in f:
        c = f["cost_usd_per_call"]
        lines.append(f"cost per call at ${f['prices_per_1k']['prompt']}/${f['prices_per_1k']['completion']} per 1K: "
                     f"median ${c['median']}, max ${c['max']}; for the failures sent: ${f['cost_usd_for_the_asked']}")
    return "\n".join(lines)
