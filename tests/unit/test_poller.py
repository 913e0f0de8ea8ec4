"""The poller's window: runs/list filters on start time, failures are found by end time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from shared.databricks.models import RunSummary
from shared.pipeline import PipelineDeps
from shared.poller import poll
from shared.settings import Settings
from shared.state import MemoryStateStore
from shared.store import MemoryDecisionStore

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
NOW_MS = int(NOW.timestamp() * 1000)
HOUR = 3_600_000


@dataclass
class ListingApi:
    runs: list[RunSummary]

    def list_runs(self, *, start_time_from, start_time_to=None, completed_only=True):
        # As the Jobs API does: the filter is on the run's start time.
        return [r for r in self.runs if r.start_time >= start_time_from]


def summary(run_id, started_h_ago, ended_min_ago, result="FAILED"):
    return RunSummary.model_validate({
        "run_id": run_id, "job_id": 1, "start_time": NOW_MS - int(started_h_ago * HOUR),
        "end_time": NOW_MS - ended_min_ago * 60_000,
        "state": {"life_cycle_state": "TERMINATED", "result_state": result},
    })


def deps_for(api, **settings):
    settings.setdefault("poll_settle_minutes", 0)
    queued = []
    deps = PipelineDeps(
        settings=Settings(databricks_workspace_url="https://adb-1.azuredatabricks.net", **settings),
        jobs_api=lambda ws: api, workspace_key=lambda ws: "default", store=MemoryDecisionStore(),
        state=MemoryStateStore(), notifier=None, classify=None, enqueue=lambda e, d: queued.append(e),
    )
    deps.state.put("checkpoint", "default", {"until_ms": NOW_MS - 5 * 60_000})
    return deps, queued


def test_a_long_run_that_failed_after_the_checkpoint_is_found():
    deps, queued = deps_for(ListingApi([summary(7, started_h_ago=6, ended_min_ago=2)]))

    poll(deps, now=NOW)

    assert [e.run_id for e in queued] == [7]


def test_runs_that_ended_before_the_window_are_not_enqueued_again():
    deps, queued = deps_for(ListingApi([summary(8, started_h_ago=3, ended_min_ago=120)]), poll_overlap_minutes=10)

    poll(deps, now=NOW)

    assert queued == []


def test_successful_and_already_decided_runs_are_left_alone():
    from shared.decision import DecisionRecord

    api = ListingApi([summary(9, 1, 1, result="SUCCESS"), summary(10, 1, 1)])
    deps, queued = deps_for(api)
    deps.store.save(DecisionRecord(key="default:10:0", workspace_id="default", run_id=10, chain_id="default:10",
                                   received_at=NOW))

    poll(deps, now=NOW)

    assert queued == []


def test_the_checkpoint_moves_to_this_poll():
    deps, _ = deps_for(ListingApi([]))

    poll(deps, now=NOW)

    assert deps.state.get("checkpoint", "default") == {"until_ms": NOW_MS}


def test_a_decided_run_that_was_repaired_and_failed_again_is_enqueued():
    from datetime import timedelta

    from shared.decision import DecisionRecord

    api = ListingApi([summary(11, started_h_ago=2, ended_min_ago=1)])
    deps, queued = deps_for(api)
    deps.store.save(DecisionRecord(key="default:11:0", workspace_id="default", run_id=11, chain_id="default:11",
                                   received_at=NOW - timedelta(hours=1), status="done"))

    poll(deps, now=NOW)

    assert [e.run_id for e in queued] == [11]


def test_one_time_runs_of_an_orchestrator_are_left_to_it():
    submitted = summary(12, 1, 1).model_copy(update={"run_type": "SUBMIT_RUN"})
    deps, queued = deps_for(ListingApi([submitted]))

    poll(deps, now=NOW)

    assert queued == []


# --- At any size ------------------------------------------------------------------------------------------


class PagedApi:
    """runs/list as the Jobs API pages it: newest first, 25 a page, filtered on start time (inclusive), with
    completed_only and run_type; a fake clock moves `latency` seconds per page."""

    def __init__(self, runs, clock=None, latency=0.0):
        self.runs = sorted(runs, key=lambda r: (r.start_time, r.run_id), reverse=True)
        self._negated_starts = [-r.start_time for r in self.runs]  # ascending, for bisect
        self.clock, self.latency, self.calls = clock, latency, []

    def list_runs_page(self, *, start_time_from, start_time_to=None, page_token=None, completed_only=True,
                       run_type="JOB_RUN"):
        from shared.databricks.models import RunsPage

        self.calls.append({"from": start_time_from, "to": start_time_to, "token": page_token,
                           "completed_only": completed_only, "run_type": run_type})
        if self.clock is not None:
            self.clock.now += self.latency
        import bisect

        hi = start_time_to if start_time_to is not None else 2**63
        first = bisect.bisect_left(self._negated_starts, -hi)  # newest run started at or before hi
        last = bisect.bisect_right(self._negated_starts, -start_time_from)  # past the oldest at or after from
        offset = first + int(page_token or 0)
        page = [r for r in self.runs[offset:min(offset + 25, last)] if not run_type or r.run_type in (None, run_type)]
        more = offset + 25 < last
        return RunsPage(runs=page, next_page_token=str(offset + 25 - first) if more else None)


class FakeMonotonic:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def busy_workspace(count=30_000, failed_every=10):
    """`count` finished runs over the last 12 hours, one in `failed_every` failed, ended within the poll window."""
    runs = []
    for i in range(count):
        started = NOW_MS - HOUR * 12 + int(i * (HOUR * 11.5) / count)
        ended = min(NOW_MS - 60_000, started + 30 * 60_000)
        result = "FAILED" if i % failed_every == 0 else "SUCCESS"
        runs.append(RunSummary.model_validate({
            "run_id": 1_000_000 + i, "job_id": 1 + i % 50, "run_type": "JOB_RUN", "start_time": started,
            "end_time": ended, "state": {"life_cycle_state": "TERMINATED", "result_state": result}}))
    return runs


def test_a_busy_workspace_never_raises_stays_within_the_budget_and_the_checkpoint_advances():
    import time as wall

    clock = FakeMonotonic()
    runs = busy_workspace()
    api = PagedApi(runs, clock=clock, latency=0.25)  # 1,200 pages at 250 ms: 300 s of listing
    deps, queued = deps_for(api, poll_time_budget_seconds=60)
    deps.state.put("checkpoint", "default", {"until_ms": NOW_MS - 12 * HOUR})
    failed = {r.run_id for r in runs if r.state.result_state == "FAILED"}

    ticks, started = [], wall.monotonic()
    while True:
        before = clock.now
        report = poll(deps, now=NOW, monotonic=clock)
        ticks.append((clock.now - before, report))
        assert report.errors == []
        if not report.unfinished:
            break
        assert len(ticks) < 20
    elapsed = wall.monotonic() - started

    assert all(spent <= 60 + 0.25 for spent, _ in ticks)  # each tick stops at its budget (plus the page in flight)
    assert 5 <= len(ticks) <= 6  # 300 s of listing in 60 s ticks (each tick re-lists its first page's edge)
    assert deps.state.get("checkpoint", "default") == {"until_ms": NOW_MS}
    assert deps.state.get("poll_sweep", "default") is None
    assert sorted(e.run_id for e in queued) == sorted(failed)  # every failure once, none twice
    assert all(c["completed_only"] and c["run_type"] == "JOB_RUN" for c in api.calls)
    assert elapsed < 30, f"30,000 runs took {elapsed:.1f}s of real time"


def test_a_sweep_saves_its_place_page_by_page_and_the_next_tick_starts_there():
    clock = FakeMonotonic()
    api = PagedApi(busy_workspace(count=1_000), clock=clock, latency=1.0)
    deps, _ = deps_for(api, poll_time_budget_seconds=10)

    poll(deps, now=NOW, monotonic=clock)
    place = deps.state.get("poll_sweep", "default")
    api.calls.clear()
    poll(deps, now=NOW, monotonic=clock)

    assert place is not None and place["start_to"] is not None
    assert api.calls[0]["to"] == place["start_to"] and api.calls[0]["token"] is None


def test_the_poller_never_enqueues_a_run_twice_for_the_same_end():
    api = ListingApi([summary(21, started_h_ago=1, ended_min_ago=1)])
    deps, queued = deps_for(api)

    for _ in range(3):  # three ticks, the message still waiting in the queue
        poll(deps, now=NOW)

    assert [e.run_id for e in queued] == [21]


def test_runs_that_just_ended_are_left_to_their_webhook_for_the_settle_time():
    api = ListingApi([summary(22, started_h_ago=1, ended_min_ago=1)])
    deps, queued = deps_for(api, poll_settle_minutes=2)

    poll(deps, now=NOW)
    assert queued == []

    poll(deps, now=NOW + timedelta(minutes=5))
    assert [e.run_id for e in queued] == [22]


def test_a_run_with_a_live_claim_is_not_enqueued():
    from shared.decision import DecisionRecord

    api = ListingApi([summary(23, started_h_ago=1, ended_min_ago=1)])
    deps, queued = deps_for(api)
    deps.store.claim(DecisionRecord(key="default:23:0", workspace_id="default", run_id=23, chain_id="default:23"),
                     "worker-1", now=NOW)

    poll(deps, now=NOW)

    assert queued == []


# --- Poison that comes back -------------------------------------------------------------------------------


def poisoned(deps, run_id, *, transient, minutes_ago=60, requeues=0):
    from shared.events import FailureEvent
    from shared.poison import record_poison

    body = FailureEvent(run_id=run_id, job_id=1, source="webhook").model_dump_json()
    record_poison(deps.state, f"m{run_id}", body, "TemporarilyUnavailable: Databricks 503 (after 5 attempts)", 5,
                  transient=transient, at=NOW - timedelta(minutes=minutes_ago))
    if requeues:
        key = f"m{run_id}"
        deps.state.put("poison", key, {**deps.state.get("poison", key), "requeues": requeues})


def test_transient_poison_is_queued_again_once_the_workspace_answers_and_only_once():
    deps, queued = deps_for(ListingApi([]), poison_retry_minutes=30)
    poisoned(deps, 31, transient=True)
    poisoned(deps, 32, transient=False)  # a bad message stays where it is
    poisoned(deps, 33, transient=True, minutes_ago=5)  # too recent: the cause may not have cleared

    poll(deps, now=NOW)
    poll(deps, now=NOW)

    assert [e.run_id for e in queued] == [31]
    entry = deps.state.get("poison", "m31")
    assert entry["status"] == "requeued" and entry["requeues"] == 1


def test_poison_is_not_requeued_while_its_workspace_still_fails():
    class Down(ListingApi):
        def list_runs(self, **kwargs):
            from shared.databricks.errors import TemporarilyUnavailable

            raise TemporarilyUnavailable("down", status=503)

    deps, queued = deps_for(Down([]))
    poisoned(deps, 34, transient=True)

    report = poll(deps, now=NOW)

    assert queued == [] and report.errors


def test_a_failure_poisoned_again_after_requeues_stops_at_the_cap():
    deps, queued = deps_for(ListingApi([]), poison_max_requeues=2)
    poisoned(deps, 35, transient=True, requeues=2)

    poll(deps, now=NOW)

    assert queued == []


def test_enqueued_marks_older_than_the_window_are_forgotten_when_a_sweep_completes():
    deps, _ = deps_for(ListingApi([summary(24, started_h_ago=1, ended_min_ago=1)]))
    deps.state.put("enqueued", "default:5", {"end_time": NOW_MS - 48 * HOUR})
    deps.state.put("enqueued", "other:6", {"end_time": NOW_MS - 48 * HOUR})

    poll(deps, now=NOW)

    assert deps.state.get("enqueued", "default:5") is None
    assert deps.state.get("enqueued", "other:6") is not None  # another workspace's sweep decides about it
    assert deps.state.get("enqueued", "default:24") is not None


def test_a_sweep_interrupted_by_the_jobs_api_keeps_its_place_and_the_next_tick_finishes_it():
    from shared.databricks.errors import TemporarilyUnavailable

    runs = busy_workspace(count=500, failed_every=7)
    api = PagedApi(runs)
    real_page, calls = api.list_runs_page, []

    def flaky(**kwargs):
        calls.append(kwargs)
        if len(calls) == 8:
            raise TemporarilyUnavailable("down for a moment", status=503)
        return real_page(**kwargs)

    api.list_runs_page = flaky
    deps, queued = deps_for(api)
    deps.state.put("checkpoint", "default", {"until_ms": NOW_MS - 12 * HOUR})

    first = poll(deps, now=NOW)
    place = deps.state.get("poll_sweep", "default")
    second = poll(deps, now=NOW)

    assert first.errors and place is not None and place["start_to"] is not None  # 7 pages kept
    assert second.errors == [] and deps.state.get("poll_sweep", "default") is None
    assert sorted(e.run_id for e in queued) == sorted(r.run_id for r in runs if r.state.result_state == "FAILED")


def test_a_failure_poisoned_again_under_a_new_message_keeps_its_requeue_count():
    from shared.events import FailureEvent
    from shared.poison import record_poison

    deps, queued = deps_for(ListingApi([]), poison_max_requeues=1)
    poisoned(deps, 36, transient=True)
    poll(deps, now=NOW)  # queued again once: the cap
    body = FailureEvent(run_id=36, job_id=1).model_dump_json()
    record_poison(deps.state, "m36-again", body, "TemporarilyUnavailable (after 5 attempts)", 5, transient=True,
                  at=NOW - timedelta(hours=1))

    poll(deps, now=NOW)

    assert [e.run_id for e in queued] == [36]
    assert deps.state.get("poison", "m36")["status"] == "superseded"
    assert deps.state.get("poison", "m36-again")["requeues"] == 1


def test_the_poller_leaves_a_run_job_child_to_its_parent():
    child = summary(25, started_h_ago=1, ended_min_ago=3).model_copy(update={"trigger": "RUN_JOB_TASK"})
    parent = summary(26, started_h_ago=1, ended_min_ago=2)
    deps, queued = deps_for(ListingApi([child, parent]))

    poll(deps, now=NOW)

    assert [e.run_id for e in queued] == [26]


def burst(count=1_000):
    """`count` failures that ended over the last 10 minutes."""
    return [RunSummary.model_validate({
        "run_id": 5_000 + i, "job_id": 1, "run_type": "JOB_RUN", "start_time": NOW_MS - HOUR,
        "end_time": NOW_MS - 10 * 60_000 + i * 600, "state": {"life_cycle_state": "TERMINATED", "result_state": "FAILED"},
    }) for i in range(count)]


def test_a_burst_waiting_in_the_queue_gets_no_poller_messages_until_the_queue_catches_up(capsys):
    # 1,000 failures in the last 10 minutes, their webhook messages still waiting in the queue (the oldest
    # enqueued 10 minutes ago), the timer ticking three times 5 minutes apart: before, each tick enqueued every
    # one of them again (3,000 extra messages).
    deps, queued = deps_for(ListingApi(burst()), poll_settle_minutes=2)
    deps.state.put("checkpoint", "default", {"until_ms": NOW_MS - 15 * 60_000})
    deps.oldest_waiting = lambda: NOW - timedelta(minutes=10, seconds=1)

    for tick in range(3):
        poll(deps, now=NOW + timedelta(minutes=5 * tick))
    during = len(queued)
    # the checkpoint moves up to the oldest waiting message, not past it
    assert deps.state.get("checkpoint", "default") == {"until_ms": NOW_MS - 10 * 60_000 - 1000}

    deps.oldest_waiting = lambda: None  # the queue caught up (here without deciding: the worst case)
    poll(deps, now=NOW + timedelta(minutes=15))

    assert during == 0
    assert sorted(e.run_id for e in queued) == [r.run_id for r in burst()]  # then each once, none lost
    with capsys.disabled():
        print(f"\n[poller] burst of 1,000 waiting failures over 3 ticks: {during} poller messages (before: 3,000)")


def test_without_a_view_of_the_queue_a_burst_gets_at_most_one_extra_message_each():
    deps, queued = deps_for(ListingApi(burst()), poll_settle_minutes=2)

    for tick in range(3):
        poll(deps, now=NOW + timedelta(minutes=5 * tick))

    per_run = {}
    for event in queued:
        per_run[event.run_id] = per_run.get(event.run_id, 0) + 1
    assert max(per_run.values()) == 1 and len(per_run) == 1_000


def test_a_queue_that_cannot_be_peeked_falls_back_to_the_settle_time():
    from shared.exceptions import TransientError

    def broken():
        raise TransientError("queue unreachable")

    deps, queued = deps_for(ListingApi([summary(27, started_h_ago=1, ended_min_ago=5)]), poll_settle_minutes=2)
    deps.oldest_waiting = broken

    report = poll(deps, now=NOW)

    assert [e.run_id for e in queued] == [27] and report.errors == []


def test_a_backlog_older_than_the_checkpoint_never_moves_the_checkpoint_back():
    deps, _ = deps_for(ListingApi([]))  # checkpoint 5 minutes ago
    deps.oldest_waiting = lambda: NOW - timedelta(minutes=20)

    poll(deps, now=NOW)

    assert deps.state.get("checkpoint", "default") == {"until_ms": NOW_MS - 5 * 60_000}
