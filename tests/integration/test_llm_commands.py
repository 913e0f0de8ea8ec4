"""`python -m shared classify --llm` and `python -m shared llm-report` with the Azure OpenAI fake."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from localdev.fakes.openai_server import FAKE_API_KEY, Reply
from tests.fixtures.openai import ANSWER_CODE, DEPLOYMENT

ROOT = Path(__file__).resolve().parents[2]
UNCLEAR = {"id": "x1", "text": "Something odd happened while writing the output; no further detail.",
           "result_state": "FAILED"}


def llm_env(endpoint: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.upper().startswith(("AZURE_OPENAI", "LLM_"))}
    return {**keep, "AZURE_OPENAI_ENDPOINT": endpoint, "AZURE_OPENAI_DEPLOYMENT": DEPLOYMENT,
            "AZURE_OPENAI_API_KEY": FAKE_API_KEY}


def classify_cli(lines: list[dict], env: dict[str, str], *args: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "shared", "classify", *args], cwd=ROOT, env=env, text=True,
                         input="".join(json.dumps(line) + "\n" for line in lines), capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_classify_with_llm_uses_the_analyzer_when_it_is_configured(openai_fake):
    openai_fake.enqueue(Reply.answer(ANSWER_CODE))
    [rules_only] = classify_cli([UNCLEAR], llm_env(openai_fake.endpoint))
    assert rules_only["category"] == "unknown", "the example must be one the rules cannot place"
    assert openai_fake.chat_requests == [], "without --llm the rules answer alone"

    [answer] = classify_cli([UNCLEAR], llm_env(openai_fake.endpoint), "--llm")
    assert len(openai_fake.chat_requests) == 1
    assert answer["category"] == "code" and answer["action"] == "SEND_EMAIL"
    assert any(e.startswith("LLM: code") for e in answer["evidence"])


def test_classify_with_llm_but_no_endpoint_uses_the_rules_and_says_so():
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("AZURE_OPENAI")}
    out = subprocess.run([sys.executable, "-m", "shared", "classify", "--llm"], cwd=ROOT, env=env, text=True,
                         input=json.dumps(UNCLEAR) + "\n", capture_output=True, timeout=60)
    assert out.returncode == 0 and json.loads(out.stdout)["id"] == "x1"
    assert "using the rules only" in out.stderr


def test_the_llm_report_prints_prompt_figures_measured_through_the_fake(tmp_path, capsys):
    from shared.commands import llm_report

    corpus = tmp_path / "set.jsonl"
    corpus.write_text("\n".join(json.dumps({**UNCLEAR, "text": UNCLEAR["text"] * n}) for n in (1, 5, 50)) + "\n")
    parser = argparse.ArgumentParser()
    llm_report.add_arguments(parser)
    assert llm_report.run(parser.parse_args(["--file", str(corpus), "--fake", "--json"])) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["failures"] == 3
    assert 0 < figures["fake_prompt_tokens"]["median"] < figures["estimated_prompt_tokens"]["median"]
    assert figures["estimated_prompt_tokens"]["max"] <= figures["max_prompt_tokens"]
    assert figures["cost_usd_per_call"]["median"] > 0
