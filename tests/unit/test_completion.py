"""A decision an invocation left half done is finished by the next delivery or by the timer, by recognising what
Databricks already shows, never by sending it again."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone

import pytest

from shared.classify import classify
from shared.completion import finish_unfinished
from shared.databricks.models import Job, Run, RunOutput
from shared.decision import DecisionRecord
from shared.events import FailureEvent
from shared.exceptions import TransientError
from shared.pipeline import PipelineDeps, process, read_job
from shared.settings import Settings
from shared.state import MemoryStateStore
from shared.store import MemoryDecisionStore
from shared.taxonomy import Action
from tests.doubles import FixedClock

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=timezone.utc)


class Api:
    """One run of job 42 that failed with a read timeout; a repair reruns it and it succeeds."""

    def __init__(self):
        self.history = [{"type": "ORIGINAL", "id": 111}]
        self.repairs: list[int | None] = []
        self.fail_repair_answer = False

    def get_run(self, run_id):
        repaired = len(self.history) > 1
        state = {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS" if repaired else "FAILED"}
        task = {"run_id": 112, "task_key": "main", "state": copy.deepcopy(state), "job_cluster_key": "etl"}
        return Run.model_validate({"run_id": 111, "job_id": 42, "state": state, "tasks": [task],
                                   "repair_history": copy.deepcopy(self.history)})

    def get_run_output(self, task_run_id):
        return RunOutput(error="java.net.SocketTimeoutException: Read timed out")

    def get_job(self, job_id):
        return Job.model_validate({"job_id": 42, "settings": {"name": "nightly"}})

    def repair_run(self, run_id, *, latest_repair_id, job_parameters=None):
        self.repairs.append(latest_repair_id)
        self.history.append({"type": "REPAIR", "id": 900 + len(self.history)})
        if self.fail_repair_answer:
            raise TransientError("the answer of runs/repair was lost")
        return self.history[-1]["id"]


class Notifier:
    def __init__(self):
        self.sent = []

    def notify(self, record, job, kind=None):
        self.sent.append(record.key)
        return [f"{record.key}:n"]


def deps_for(api, clock):
    queued = []
    deps = PipelineDeps(
        settings=Settings(), jobs_api=lambda ws: api, workspace_key=lambda ws: "ws",
        store=MemoryDecisionStore(lease=timedelta(minutes=11)), state=MemoryStateStore(), notifier=Notifier(),
        classify=classify, enqueue=lambda event, delay: queued.append((event, delay)), clock=clock,
    )
    return deps, queued


def a_worker_that_died_right_after_the_repair(api, deps):
    """The repair reached Databricks, then the worker was killed: the record says decided (intent on it)."""
    api.fail_repair_answer = True
    saves = deps.store.save

    def save(record, **kw):
        saved = saves(record, **kw)
        if saved.status == "decided":
            raise SystemExit("killed")  # stands in for SIGKILL: nothing after this runs, nothing is released
        return saved

    claims = deps.store.claim

    def claim(record, owner, *a, **kw):  # the decision written with the claim (one write): killed after it
        claimed = claims(record, owner, *a, **kw)
        if kw.get("decided") and claimed.reason == "new":
            raise SystemExit("killed")
        return claimed

    deps.store.save, deps.store.claim = save, claim
    api.fail_repair_answer = False
    with pytest.raises(SystemExit):
        process(FailureEvent(run_id=111), deps, owner="inv-1")
    deps.store.save, deps.store.claim = saves, claims
    # A real kill releases nothing (the exception above did): the dead invocation's claim stays live.
    assert deps.store.claim(deps.store.get("ws:111:0"), "inv-1", now=deps.clock()).granted
    api.repair_run(111, latest_repair_id=None)  # ... what it sent just before dying


def test_a_redelivery_whose_run_shows_success_after_the_agents_repair_completes_the_record():
    api, clock = Api(), FixedClock(NOW)
    deps, _ = deps_for(api, clock)
    a_worker_that_died_right_after_the_repair(api, deps)
    clock.now += timedelta(minutes=12)  # the dead invocation's lease is over when the host redelivers

    result = process(FailureEvent(run_id=111), deps, owner="inv-2")

    record = deps.store.get("ws:111:0")
    assert result.status == "decided" and "finished ws:111:0" in result.detail
    assert record.status == "done" and record.repair_id == 901 and record.outcome == "pending"
    assert "recognised" in record.done and len(api.repairs) == 1 and deps.notifier.sent == ["ws:111:0"]


def test_while_the_dead_invocations_lease_runs_the_timer_finishes_it_afterwards():
    api, clock = Api(), FixedClock(NOW)
    deps, _ = deps_for(api, clock)
    a_worker_that_died_right_after_the_repair(api, deps)

    assert process(FailureEvent(run_id=111), deps, owner="inv-2").status == "skipped"  # lease still live
    assert deps.store.get("ws:111:0").status == "decided"
    assert finish_unfinished(deps, job_of=read_job) == []
    clock.now += timedelta(minutes=12)

    assert finish_unfinished(deps, job_of=read_job) == ["ws:111:0"]
    record = deps.store.get("ws:111:0")
    assert record.status == "done" and record.repair_id == 901 and len(api.repairs) == 1


def test_a_record_left_claimed_is_put_back_on_the_queue_once_its_lease_is_over():
    api, clock = Api(), FixedClock(NOW)
    deps, queued = deps_for(api, clock)
    deps.store.claim(DecisionRecord(key="ws:111:0", workspace_id="ws", run_id=111, job_id=42, chain_id="ws:111"),
                     "inv-1", now=NOW)

    finish_unfinished(deps, job_of=read_job)
    assert queued == []
    clock.now += timedelta(minutes=12)
    finish_unfinished(deps, job_of=read_job)

    assert [(e.run_id, e.source) for e, _ in queued] == [(111, "poller")]


def test_a_failed_invocation_gives_its_claim_back_so_the_retry_need_not_wait():
    api, clock = Api(), FixedClock(NOW)
    deps, _ = deps_for(api, clock)
    api.get_job = lambda job_id: (_ for _ in ()).throw(TransientError("jobs/get: 503"))
    with pytest.raises(TransientError):
        process(FailureEvent(run_id=111), deps, owner="inv-1")
    stored = deps.store.get("ws:111:0")  # decided before claiming: nothing written yet, or the claim given back
    assert stored is None or stored.claim_owner is None
    del api.get_job

    result = process(FailureEvent(run_id=111), deps, owner="inv-2")  # at once, same clock

    assert result.status == "decided" and result.action is Action.RETRY and len(api.repairs) == 1
