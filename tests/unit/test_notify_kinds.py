"""Which email a decision gets, and the ids that keep it to one."""

from __future__ import annotations

import pytest

from shared.notify import NotificationKind, kind_for, notification_id, outcome_kind
from shared.notify.sample import sample_outcome_record, sample_record
from shared.taxonomy import Action


@pytest.mark.parametrize(
    ("action", "kind"),
    [
        (Action.SEND_EMAIL, NotificationKind.DIAGNOSIS),
        (Action.ESCALATE, NotificationKind.ESCALATION),
        (Action.RETRY, NotificationKind.RETRY),
        (Action.RETRY_WITH_NEW_PARAMS, NotificationKind.RETRY),
    ],
)
def test_each_action_in_act_mode_has_its_own_kind(action, kind):
    assert kind_for(sample_record(action)) is kind


def test_ignore_gets_no_email():
    record = sample_record(Action.SEND_EMAIL)
    record.action = Action.IGNORE
    assert kind_for(record) is None


def test_a_record_without_a_decision_gets_no_email():
    record = sample_record(Action.SEND_EMAIL)
    record.action = None
    assert kind_for(record) is None


@pytest.mark.parametrize("action", [Action.SEND_EMAIL, Action.ESCALATE, Action.RETRY, Action.RETRY_WITH_NEW_PARAMS])
def test_observe_mode_turns_every_email_into_an_observe_email(action):
    assert kind_for(sample_record(action, mode="observe")) is NotificationKind.OBSERVE


def test_observe_mode_ignore_still_gets_nothing():
    record = sample_record(Action.SEND_EMAIL, mode="observe")
    record.action = Action.IGNORE
    assert kind_for(record) is None


def test_notification_id_is_the_decision_key_and_kind():
    record = sample_record(Action.SEND_EMAIL)
    assert notification_id(record, NotificationKind.DIAGNOSIS) == f"{record.key}:diagnosis"


def test_escalations_of_one_chain_share_one_id_whatever_the_attempt():
    first = sample_record(Action.ESCALATE)
    later = first.model_copy(update={"key": "default:999:2", "run_id": 999, "attempt": 5})
    assert notification_id(first, NotificationKind.ESCALATION) == notification_id(later, NotificationKind.ESCALATION)
    assert notification_id(first, NotificationKind.ESCALATION) == f"{first.chain_id}:escalation"


# --- how a resized rerun ended ----------------------------------------------------------------------------
def test_a_fresh_resize_decision_still_gets_its_retry_email_not_an_outcome():
    record = sample_record(Action.RETRY_WITH_NEW_PARAMS)
    record.outcome = "pending"
    assert kind_for(record) is NotificationKind.RETRY
    assert outcome_kind(record) is None


def test_a_resized_rerun_that_succeeded_deserves_an_outcome_email():
    record = sample_outcome_record("succeeded")
    assert outcome_kind(record) is NotificationKind.OUTCOME
    assert kind_for(record) is NotificationKind.RETRY, "the decision's own email does not change"
    assert notification_id(record, NotificationKind.OUTCOME) == f"{record.key}:outcome"


def test_a_plain_reruns_end_needs_no_email():
    record = sample_record(Action.RETRY)
    record.outcome = "succeeded"
    assert outcome_kind(record) is None


def test_observe_mode_never_gets_an_outcome_email():
    record = sample_record(Action.RETRY_WITH_NEW_PARAMS, mode="observe")
    record.outcome = "succeeded"
    assert outcome_kind(record) is None


def test_a_resized_rerun_that_failed_again_leaves_the_email_to_the_next_decision():
    assert outcome_kind(sample_outcome_record("failed")) is None
