"""The second holdout shares no line and no near-duplicate record with any other labelled set.

tests/data/holdout-2.jsonl was written without reading the rules; this keeps it independent of the
dev set (../shared/eval/dev.jsonl, checked only when present) and of every other tests/data/*.jsonl.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
HOLDOUT = DATA / "holdout-2.jsonl"
DEV = REPO.parent / "shared" / "eval" / "dev.jsonl"

MIN_LINE = 40  # a shared line shorter than this is boilerplate (a bare frame, a status word)
NEAR_DUPLICATE = 0.5  # Jaccard of word 3-gram shingles with values masked
CATEGORIES = {
    "timeout": "RETRY", "resource": "RETRY_WITH_NEW_PARAMS", "permission": "SEND_EMAIL",
    "code": "SEND_EMAIL", "data": "SEND_EMAIL", "network": "RETRY", "infrastructure": "RETRY",
    "concurrency": "RETRY", "throttling": "RETRY", "quota": "SEND_EMAIL", "cancelled": "IGNORE",
}
RESULT_STATES = {"FAILED", "TIMEDOUT", "CANCELED", "INTERNAL_ERROR", None}

_WS = re.compile(r"\s+")
_VALUE = re.compile(r"[0-9a-f]*\d[0-9a-f]*", re.IGNORECASE)  # numbers, hex ids, uuids' pieces
_WORD = re.compile(r"[a-z_]+|0")


def _load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _line_keys(text: str) -> set[str]:
    """Each line (and each sentence of a long line), lower-cased with whitespace collapsed."""
    keys: set[str] = set()
    for line in text.splitlines():
        for piece in [line, *re.split(r"(?<=[.!?])\s+", line)]:
            norm = _WS.sub(" ", piece).strip().lower()
            if len(norm) >= MIN_LINE:
                keys.add(norm)
    return keys


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = _WORD.findall(_VALUE.sub("0", text.lower()))
    return {tuple(words[i:i + 3]) for i in range(max(len(words) - 2, 1))}


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def _others() -> list[tuple[str, list[dict]]]:
    sets = [(p.name, _load(p)) for p in sorted(DATA.glob("*.jsonl")) if p != HOLDOUT]
    if DEV.exists():
        sets.append(("dev.jsonl", _load(DEV)))
    return sets


@pytest.fixture(scope="module")
def holdout() -> list[dict]:
    return _load(HOLDOUT)


def test_holdout_is_large_and_well_formed(holdout: list[dict]) -> None:
    assert len(holdout) >= 150
    ids = [r["id"] for r in holdout]
    assert len(set(ids)) == len(ids)
    for r in holdout:
        assert r["category"] in CATEGORIES, r["id"]
        assert r["action"] == CATEGORIES[r["category"]], r["id"]
        assert r["result_state"] in RESULT_STATES, r["id"]
        assert r["text"].strip() and r["source"].strip() and r["shape"].strip(), r["id"]
    assert {r["category"] for r in holdout} == set(CATEGORIES)


def test_shapes_are_unique_within_the_holdout(holdout: list[dict]) -> None:
    shapes = [r["shape"] for r in holdout]
    assert len(set(shapes)) == len(shapes)


def test_no_shared_line_with_other_sets(holdout: list[dict]) -> None:
    others = _others()
    assert others, "no other labelled set to compare with"
    shared = []
    for name, records in others:
        seen: dict[str, str] = {}
        for r in records:
            for key in _line_keys(r["text"]):
                seen.setdefault(key, r["id"])
        for r in holdout:
            shared += [(r["id"], name, seen[k], k) for k in _line_keys(r["text"]) if k in seen]
    assert not shared, shared[:10]


def test_no_near_duplicate_record_in_other_sets(holdout: list[dict]) -> None:
    close = []
    for name, records in _others():
        theirs = [(r["id"], _shingles(r["text"])) for r in records]
        for r in holdout:
            mine = _shingles(r["text"])
            for other_id, sh in theirs:
                score = _jaccard(mine, sh)
                if score >= NEAR_DUPLICATE:
                    close.append((r["id"], name, other_id, round(score, 2)))
    assert not close, close[:10]


def test_no_shape_name_reused_from_other_sets(holdout: list[dict]) -> None:
    taken = {r.get("shape") for _, records in _others() for r in records}
    assert not [r["id"] for r in holdout if r["shape"] in taken]


def test_the_checks_catch_a_copied_line_and_a_reworded_copy() -> None:
    # The detectors themselves must fire, or the tests above prove nothing.
    text = "org.example.FooException: the thing we copied from another set verbatim\n\tat a.b(C.java:1)"
    assert _line_keys(text) & _line_keys("prefix\n" + text.upper())
    reworded = text.replace("1", "7").replace("thing", "thing")
    assert _jaccard(_shingles(text), _shingles(reworded)) >= NEAR_DUPLICATE
