"""A failure too old to act on is recorded and reported, never rerun (a replayed or forged webhook)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.databricks.models import Run
from shared.decide import Verdict
from shared.events import FailureEvent
from shared.freshness import hold_stale, run_age_hours
from shared.pipeline import process
from shared.taxonomy import Action
from tests.unit.test_pipeline import MemoryJobsApi, deps_for, run_json

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=timezone.utc)


def ended(ago: timedelta) -> dict:
    return {**run_json(), "start_time": int((NOW - ago - timedelta(minutes=20)).timestamp() * 1000),
            "end_time": int((NOW - ago).timestamp() * 1000)}


@pytest.mark.parametrize("action", [Action.RETRY, Action.RETRY_WITH_NEW_PARAMS])
def test_a_rerun_of_a_run_older_than_the_window_becomes_an_email(action):
    run = Run.model_validate(ended(timedelta(days=90)))
    verdict = hold_stale(Verdict(action, "timeout failure is worth a rerun"), run, NOW, 6)
    assert verdict.action is Action.SEND_EMAIL
    assert "90 days ago" in verdict.reason and "FAILURE_MAX_AGE_HOURS" in verdict.reason


def test_a_fresh_run_or_a_decision_that_changes_nothing_is_left_alone():
    fresh = Run.model_validate(ended(timedelta(hours=5, minutes=59)))
    assert hold_stale(Verdict(Action.RETRY, "r"), fresh, NOW, 6).action is Action.RETRY
    old = Run.model_validate(ended(timedelta(days=2)))
    for action in (Action.SEND_EMAIL, Action.ESCALATE, Action.IGNORE):
        assert hold_stale(Verdict(action, "r"), old, NOW, 6).action is action


def test_a_run_without_times_counts_as_fresh_and_start_stands_in_for_a_missing_end():
    assert run_age_hours(Run.model_validate(run_json()), NOW) is None
    started = {**run_json(), "start_time": int((NOW - timedelta(hours=3)).timestamp() * 1000)}
    assert run_age_hours(Run.model_validate(started), NOW) == pytest.approx(3)


def test_a_replayed_webhook_for_a_run_that_ended_90_days_ago_repairs_nothing():
    api = MemoryJobsApi({111: ended(timedelta(days=90))})
    deps, _ = deps_for(api)
    deps.clock = lambda: NOW

    result = process(FailureEvent(run_id=111, received_at=NOW), deps, owner="m1")

    assert result.status == "decided" and result.action is Action.SEND_EMAIL
    assert api.repairs == []
    record = deps.store.get("ws:111:0")
    assert record.category.value == "timeout" and "recorded and reported" in record.reason
    assert deps.notifier.sent, "the owners are told"


def test_the_same_failure_within_the_window_is_repaired():
    api = MemoryJobsApi({111: ended(timedelta(minutes=30))})
    deps, _ = deps_for(api)
    deps.clock = lambda: NOW
    assert process(FailureEvent(run_id=111, received_at=NOW), deps, owner="m1").action is Action.RETRY
    assert api.repairs == [111]
