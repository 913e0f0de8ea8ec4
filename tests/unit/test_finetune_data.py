"""Fine-tuning data: verified labels only, one per fingerprint, redacted, in the chat format, refused when thin."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from shared.decision import DecisionRecord
from shared.finetune.dataset import NotEnoughExamples, check_chat_jsonl, prepare
from shared.finetune.labels import verified
from shared.report.figures import Verdict
from shared.taxonomy import Action, Category

T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)
PLANTED = "dapi0123456789abcdef0123456789abcdef"


def rec(n: int, category: Category = Category.NETWORK, *, outcome: str = "not_applicable", fingerprint: str | None = None,
        action: Action | None = None) -> DecisionRecord:
    action = action or (Action.RETRY if category in (Category.NETWORK, Category.TIMEOUT) else Action.SEND_EMAIL)
    return DecisionRecord(key=f"ws:{n}:0", workspace_id="ws", job_id=n, job_name=f"job {n}", run_id=n,
                          chain_id=f"ws:{n}", category=category, action=action, outcome=outcome, confidence=0.8,
                          rule_id="r1", fingerprint=fingerprint or f"fp{n}", received_at=T0 + timedelta(minutes=n),
                          excerpt=f"java.net.SocketTimeoutException: Read timed out (token {PLANTED}) #{n}",
                          outcome_verdict={"succeeded": "confirmed", "failed": "refuted"}.get(outcome))


def test_a_succeeded_rerun_confirms_its_category():
    (item,) = verified([rec(1, outcome="succeeded")], [])
    assert (item.category, item.source) == (Category.NETWORK, "outcome")


def test_a_rerun_that_failed_again_teaches_nothing():
    assert verified([rec(1, outcome="failed")], []) == []


def test_a_rerun_that_succeeded_without_the_loops_verdict_is_not_a_label():
    unverified = rec(1, outcome="succeeded").model_copy(update={"outcome_verdict": None})
    assert verified([unverified], []) == []


def test_unverified_decisions_are_never_used():
    assert verified([rec(1), rec(2, Category.CODE)], []) == []


def test_a_correction_gives_the_right_category_and_beats_the_outcome():
    (item,) = verified([rec(1, outcome="succeeded")],
                       [Verdict(decision_key="ws:1:0", correct=False, category="infrastructure", person="a")])
    assert (item.category, item.source) == (Category.INFRASTRUCTURE, "feedback")


def test_wrong_without_a_category_and_disagreeing_people_are_left_out():
    records = [rec(1), rec(2)]
    verdicts = [Verdict(decision_key="ws:1:0", correct=False, person="a"),
                Verdict(decision_key="ws:2:0", correct=True, person="a"),
                Verdict(decision_key="ws:2:0", correct=False, category="code", person="b")]
    assert verified(records, verdicts) == []


def test_one_example_per_fingerprint_the_newest():
    items = verified([rec(1, outcome="succeeded", fingerprint="same"), rec(2, outcome="succeeded", fingerprint="same")], [])
    assert [i.record.run_id for i in items] == [2]


def _seeded(per_class: int) -> list:
    records = [rec(i, Category.NETWORK, outcome="succeeded") for i in range(per_class)]
    records += [rec(100 + i, Category.CODE) for i in range(per_class)]
    verdicts = [Verdict(decision_key=f"ws:{100 + i}:0", correct=True, person="a") for i in range(per_class)]
    return verified(records, verdicts)


def test_prepare_refuses_with_the_counts_when_a_class_is_too_small(tmp_path):
    with pytest.raises(NotEnoughExamples, match=r"8 verified examples \(code 4, network 4\).*too few: code, network"):
        prepare(_seeded(4), tmp_path, min_per_class=10)
    assert not (tmp_path / "train.jsonl").exists()


def test_prepare_writes_valid_redacted_chat_jsonl_with_a_stable_split(tmp_path):
    done = prepare(_seeded(12), tmp_path / "a", min_per_class=10)
    train, validation = done.train.read_text(), done.validation.read_text()
    assert check_chat_jsonl(train) == [] and check_chat_jsonl(validation) == []
    assert PLANTED not in train + validation
    assert sum(done.train_counts.values()) + sum(done.validation_counts.values()) == 24
    assert 0 < sum(done.validation_counts.values()) < 12
    first = json.loads(train.splitlines()[0])
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant"]
    answer = json.loads(first["messages"][-1]["content"])
    assert answer["category"] in ("network", "code")
    again = prepare(_seeded(12), tmp_path / "b", min_per_class=10)
    assert again.validation.read_text() == validation  # same fingerprints, same side of the split


@pytest.mark.parametrize(("text", "problem"), [
    ("", "no examples"), ("{not json", "not JSON"), ('{"messages": []}', "no 'messages'"),
    ('{"messages": [{"role": "user", "content": "x"}]}', "last message must be the assistant"),
    ('{"messages": [{"role": "robot", "content": "x"}]}', "role of system/user/assistant"),
])
def test_the_format_check_names_what_is_wrong(text, problem):
    assert problem in " ".join(check_chat_jsonl(text))
