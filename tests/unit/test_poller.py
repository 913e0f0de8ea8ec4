"""The poller's window: runs/list filters on start time, failures are found by end time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

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
