"""Training examples in the Azure OpenAI chat fine-tuning format, written as JSONL with a validation split.

Each example is the very prompt the agent sends (system and user messages, built by shared.llm.prompt from
the decision's redacted excerpt) and, as the assistant's answer, the structured analysis the schema asks for
with the verified category. Everything passes the redaction once more before it is written.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.finetune.labels import Labeled
from shared.redaction import redact, redact_data
from shared.taxonomy import FIRST_ACTION

# Azure OpenAI refuses a training file with fewer than 10 examples; a class with fewer than this teaches noise.
MIN_TOTAL = 10
DEFAULT_MIN_PER_CLASS = 10
ROLES = ("system", "user", "assistant")


class NotEnoughExamples(Exception):
    """Too few verified examples overall or in some class; the message says which and how many."""


@dataclass
class Prepared:
    train: Path
    validation: Path
    train_counts: Counter[str] = field(default_factory=Counter)
    validation_counts: Counter[str] = field(default_factory=Counter)


def example(item: Labeled, *, max_prompt_tokens: int) -> dict[str, Any]:
    """One chat example: the agent's prompt for this failure and the verified answer."""
    from shared.llm.prompt import build_prompt
    from shared.llm.schema import FailureAnalysis

    record = item.record
    rules = f"{record.category.value} (confidence {record.confidence:.2f}"
    rules += f", rule {record.rule_id})" if record.rule_id else ")"
    prompt = build_prompt(
        record.excerpt, context={"job_name": record.job_name, "tasks": [t.model_dump() for t in record.failed_tasks],
                                 "attempt": record.attempt, "max_attempts": record.max_attempts},
        run_state="; ".join(record.evidence[:1]) or "(not given)", rules=rules,
        max_prompt_tokens=max_prompt_tokens, redact=redact,
    )
    fields = FailureAnalysis.model_fields
    answer: dict[str, Any] = {
        "category": item.category.value,
        "confidence": 0.95,
        "root_cause": record.analysis.root_cause or record.reason or f"A {item.category.value} failure.",
        "suggested_fix": record.analysis.suggested_fix or "See the run's error output.",
        "severity": record.analysis.severity if record.analysis.severity in ("low", "medium", "high", "critical")
        else "medium",
        "suggested_parameters": None,
    }
    if "action" in fields:  # the schema of the prompt version in use decides which fields the model returns
        answer["action"] = FIRST_ACTION[item.category].value
    answer = {k: v for k, v in answer.items() if k in fields}
    content = FailureAnalysis.model_validate(answer).model_dump_json()
    return {"messages": [*prompt.messages, {"role": "assistant", "content": redact(content)}]}


def prepare(items: Iterable[Labeled], out_dir: Path, *, validation_share: float = 0.2,
            min_per_class: int = DEFAULT_MIN_PER_CLASS, max_prompt_tokens: int = 1500) -> Prepared:
    """Write train.jsonl and validation.jsonl under out_dir; NotEnoughExamples when a class is too small."""
    items = list(items)
    counts = Counter(i.category.value for i in items)
    small = {c: n for c, n in sorted(counts.items()) if n < min_per_class}
    if len(items) < MIN_TOTAL or small:
        detail = ", ".join(f"{c} {n}" for c, n in sorted(counts.items())) or "none"
        need = f"at least {min_per_class} per class" + (f" (too few: {', '.join(small)})" if small else "")
        raise NotEnoughExamples(
            f"{len(items)} verified examples ({detail}); fine-tuning needs at least {MIN_TOTAL} in all and {need}. "
            "Collect more feedback and outcomes, or lower --min-per-class knowingly."
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    prepared = Prepared(out_dir / "train.jsonl", out_dir / "validation.jsonl")
    with prepared.train.open("w", encoding="utf-8") as train, prepared.validation.open("w", encoding="utf-8") as val:
        for item in sorted(items, key=lambda i: _bucket(i)):
            line = json.dumps(redact_data(example(item, max_prompt_tokens=max_prompt_tokens)), ensure_ascii=False)
            to_validation = _bucket(item) < validation_share
            (val if to_validation else train).write(line + "\n")
            (prepared.validation_counts if to_validation else prepared.train_counts)[item.category.value] += 1
    return prepared


def _bucket(item: Labeled) -> float:
    # Stable across runs: the same fingerprint always lands on the same side of the split.
    digest = hashlib.sha256((item.record.fingerprint or item.record.key).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def check_chat_jsonl(text: str) -> list[str]:
    """Problems with a chat fine-tuning file, as Azure OpenAI's validation reports them; [] when it is valid."""
    problems = []
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return ["the file has no examples"]
    for number, line in enumerate(lines, 1):
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: not JSON ({exc.msg})")
            continue
        messages = data.get("messages") if isinstance(data, dict) else None
        if not isinstance(messages, list) or not messages:
            problems.append(f"line {number}: no 'messages' list")
            continue
        for message in messages:
            if not isinstance(message, dict) or message.get("role") not in ROLES \
                    or not isinstance(message.get("content"), str) or not message["content"]:
                problems.append(f"line {number}: each message needs a role of {'/'.join(ROLES)} and text content")
                break
        else:
            if messages[-1].get("role") != "assistant":
                problems.append(f"line {number}: the last message must be the assistant's")
    return problems
