"""The queue function under any message (hypothesis): it is processed, or it raises to be retried, or it goes to
the poison queue, and whenever it leaves the queue unprocessed its reason is in the state table, secrets masked."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings, strategies as st

from shared.databricks.errors import NotFound, TemporarilyUnavailable
from shared.worker import handle_message
from tests.secret_catalogue import PAT
from tests.unit.test_pipeline import MemoryJobsApi, deps_for, run_json

MAX_DEQUEUE = 5


class FlakyJobsApi(MemoryJobsApi):
    """Run 111 exists; 503 for run 503; every other run does not exist."""

    def get_run(self, run_id):
        if run_id == 503:
            raise TemporarilyUnavailable("Databricks is busy")
        if run_id not in self.runs:
            raise NotFound(f"Run {run_id} does not exist.")
        return super().get_run(run_id)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
EVENTS = st.fixed_dictionaries(
    {"run_id": st.sampled_from([111, 503, 404, "111", -1, 2**64, None, "x"]) | JSON_VALUES},
    optional={"version": st.sampled_from([1, 2, "1"]) | JSON_VALUES, "job_name": st.text(max_size=300),
              "source": st.sampled_from(["webhook", "poller", "deferred", "evil"]),
              "defer_count": st.integers(min_value=-3, max_value=40), "workspace_id": st.text(max_size=30) | st.none(),
              "received_at": st.text(max_size=30)},
)
BODIES = st.one_of(EVENTS.map(json.dumps), st.text(max_size=2_000), JSON_VALUES.map(json.dumps),
                   st.binary(max_size=500).map(lambda b: b.decode("utf-8", errors="replace")))


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(body=BODIES, dequeue_count=st.integers(min_value=1, max_value=MAX_DEQUEUE), secret=st.booleans())
def test_no_message_is_lost_without_a_recorded_reason(body, dequeue_count, secret):
    if secret:
        body = body + f" token {PAT}"
    deps, _ = deps_for(FlakyJobsApi({111: run_json()}))
    try:
        handled = handle_message(body, message_id="m1", dequeue_count=dequeue_count, max_dequeue_count=MAX_DEQUEUE,
                                 deps=deps)
    except Exception:  # noqa: BLE001 - raising is how a message is retried
        recorded = deps.state.get("poison", "m1")
        if dequeue_count >= MAX_DEQUEUE:
            assert recorded and recorded["reason"], "the last delivery records why the message is given up"
        else:
            assert recorded is None, "a message that will be retried is not recorded as poison yet"
        return
    if handled.poison is not None:
        recorded = deps.state.get("poison", "m1")
        assert recorded and recorded["reason"]
        assert PAT not in json.dumps(recorded), "the poison record is masked like the log line"
    else:
        assert handled.result is not None and handled.result.status in (
            "decided", "duplicate", "in_progress", "deferred", "skipped")
