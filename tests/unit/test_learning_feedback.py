"""Feedback bodies are validated with the bad field named, and stored once per decision and person."""

from datetime import datetime, timezone

import pytest

from shared.learning.feedback import ANONYMOUS, FeedbackError, MemoryFeedbackStore, parse_feedback
from shared.taxonomy import Action, Category

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)


def parse(body, via="api"):
    return parse_feedback(body, decision_key="ws:1:0", via=via, now=NOW)


@pytest.mark.parametrize("body, field", [
    ({"by": "ann"}, "correct"),
    ({"correct": "maybe", "by": "ann"}, "correct"),
    ({"correct": False, "category": "gremlins", "by": "ann"}, "category"),
    ({"correct": False, "category": "unknown", "by": "ann"}, "category"),
    ({"correct": False, "action": "REBOOT", "by": "ann"}, "action"),
    ({"correct": True}, "by"),
    ({"correct": True, "by": "ann", "rating": 5}, "rating"),
    ({"correct": True, "by": "ann", "comment": "x" * 2001}, "comment"),
    ({"correct": True, "by": ["ann"]}, "by"),
])
def test_a_bad_body_is_refused_naming_the_field(body, field):
    with pytest.raises(FeedbackError) as caught:
        parse(body)
    assert caught.value.field == field and f"'{field}'" in str(caught.value)


def test_a_right_answer_cannot_also_name_a_correction():
    with pytest.raises(FeedbackError, match="correct=false"):
        parse({"correct": True, "category": "network", "by": "ann"})


def test_a_rerun_is_refused_for_a_category_a_rerun_cannot_fix():
    with pytest.raises(FeedbackError) as caught:
        parse({"correct": False, "category": "permission", "action": "RETRY", "by": "ann"})
    assert caught.value.field == "action"


def test_a_form_answer_reads_yes_no_and_names_in_any_case():
    feedback = parse({"correct": "no", "category": "Network", "action": "retry"}, via="link")
    assert (feedback.correct, feedback.category, feedback.action) == (False, Category.NETWORK, Action.RETRY)
    assert feedback.by == ANONYMOUS


def test_a_secret_in_a_comment_is_not_stored():
    token = "dapi" + "0123456789abcdef" * 2
    feedback = parse({"correct": False, "by": "ann", "comment": f"rerun with token {token}"})
    assert token not in feedback.comment


def test_the_same_persons_answer_is_stored_once_and_a_changed_answer_replaces_it():
    store = MemoryFeedbackStore()
    assert store.put(parse({"correct": True, "by": "Ann Lee"}))
    assert not store.put(parse({"correct": True, "by": "  ann   LEE "})), "the same answer again changes nothing"
    assert store.put(parse({"correct": False, "by": "ann lee", "category": "network"}))
    [answer] = store.for_decision("ws:1:0")
    assert answer.category is Category.NETWORK


def test_two_people_give_two_answers():
    store = MemoryFeedbackStore()
    store.put(parse({"correct": True, "by": "ann"}))
    store.put(parse({"correct": False, "by": "bob"}))
    assert sorted(f.by for f in store.for_decision("ws:1:0")) == ["ann", "bob"]
