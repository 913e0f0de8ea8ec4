"""The queue message: versioned, round-trips, names the bad field."""

import pytest

from shared.events import FailureEvent
from shared.exceptions import BadRequest


def test_event_round_trips_through_the_queue_format():
    event = FailureEvent(workspace_id="1", job_id=42, run_id=111, task_run_id=222, task_key="t", source="poller")
    assert FailureEvent.from_message(event.to_message()) == event


def test_message_without_run_id_names_the_field():
    with pytest.raises(BadRequest) as err:
        FailureEvent.from_message('{"version": 1, "job_id": 1}')
    assert err.value.field == "run_id"


def test_message_of_an_unknown_version_is_refused():
    with pytest.raises(BadRequest):
        FailureEvent.from_message('{"version": 99, "run_id": 1}')


def test_garbage_message_is_a_bad_request():
    with pytest.raises(BadRequest):
        FailureEvent.from_message("not json at all")
