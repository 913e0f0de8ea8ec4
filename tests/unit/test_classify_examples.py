"""The rules' examples come from public formats with invented values: none shares a sentence with a labeled set
(the repository's own under tests/data/, and ../shared/eval/dev.jsonl when present), so a rule is never
written against a labeled sample."""

from __future__ import annotations

import json
import re
from pathlib import Path

from shared.classify.rules import load_rules

ROOT = Path(__file__).resolve().parents[2]
MIN_SENTENCE = 24  # shorter pieces are signals ("Java heap space"), not sentences
_SPLIT = re.compile(r"(?<=[.!?])\s+|\n")


def sentences(text: str) -> set[str]:
    out = set()
    for piece in _SPLIT.split(text):
        piece = " ".join(piece.lower().split()).strip(" .")
        if len(piece) >= MIN_SENTENCE:
            out.add(piece)
    return out


def labeled_sentences() -> dict[str, str]:
    found: dict[str, str] = {}
    paths = sorted((ROOT / "tests" / "data").glob("*.jsonl"))
    shared = ROOT.parent / "shared" / "eval" / "dev.jsonl"
    paths += [shared] if shared.exists() else []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                for sentence in sentences(record.get("text") or ""):
                    found.setdefault(sentence, f"{path.name}:{record.get('id')}")
    return found


def test_no_rule_example_shares_a_sentence_with_a_labeled_set():
    labeled = labeled_sentences()
    assert labeled, "the repository's own labeled set must be found"
    shared = [f"{rule.id}: {s!r} (also in {labeled[s]})"
              for rule in load_rules() for example in rule.examples for s in sentences(example) if s in labeled]
    assert shared == []


def test_the_check_would_catch_a_copied_sentence():
    labeled = labeled_sentences()
    some = next(iter(labeled))
    assert sentences("prefix. " + some + ". suffix") & set(labeled)
