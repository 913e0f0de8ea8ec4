"""Two invocations of one message at once, and the timer's follow-up racing the worker's save, on real Table
Storage (Azurite ETags) against the simulator: one action, and no record overwritten."""

from __future__ import annotations

import copy
import threading

import pytest
from azure.data.tables import TableServiceClient

from localdev.databricks_sim.model import TaskFailure, succeed_if_resized
from shared.classify import classify
from shared.events import FailureEvent
from shared.pipeline import PipelineDeps
from shared.settings import Settings
from shared.state import MemoryStateStore
from shared.store import TableDecisionStore
from shared.worker import handle_message
from shared.workspaces import resolve_workspace, workspace_key
from tests.fixtures.databricks import SIM_TOKEN

SECRET = "race+Plain/Key=="
CLUSTER = {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_DS3_v2", "num_workers": 2,
           "spark_conf": {"fs.azure.account.key.acct.dfs.core.windows.net": SECRET}}


class Notifier:
    """Records what it was asked to send; `during` runs inside the worker's notify (the race, made certain)."""

    def __init__(self):
        self.sent, self.during = [], None

    def notify(self, record, job, kind=None):
        nid = f"{record.key}:{kind.value if kind else 'decision'}"
        self.sent.append(nid)
        if kind is None and self.during is not None:
            during, self.during = self.during, None
            during()
        return [nid]


@pytest.fixture
def deps(sim, jobs_api, storage_connection_string, unique_name):
    service = TableServiceClient.from_connection_string(storage_connection_string)
    service.create_table(unique_name)
    settings = Settings(databricks_workspace_url=sim.url, databricks_pat_token=SIM_TOKEN,
                        databricks_workspace_id=sim.workspace_id, claim_wait_seconds=5)
    queued: list[tuple[FailureEvent, int]] = []
    return PipelineDeps(
        settings=settings, jobs_api=lambda wid: jobs_api,
        workspace_key=lambda wid: workspace_key(resolve_workspace(settings, wid)),
        store=TableDecisionStore(service.get_table_client(unique_name)), state=MemoryStateStore(),
        notifier=Notifier(), classify=classify, enqueue=lambda event, delay: queued.append((event, delay)),
    ), queued


def failed_job(sim, error="java.net.SocketTimeoutException: Read timed out"):
    job = sim.add_job("race", [{"task_key": "main", "notebook_task": {"notebook_path": "/x"}, "job_cluster_key": "etl"}],
                      job_clusters=[{"job_cluster_key": "etl", "new_cluster": copy.deepcopy(CLUSTER)}])
    failure = TaskFailure(error=error)
    run = sim.fail_run(job, {"main": failure})
    return job, run, failure


def test_one_message_delivered_to_two_invocations_at_once_acts_once(sim, deps):
    deps, queued = deps
    job, run, _ = failed_job(sim)
    sim.stall(1.0, path="/runs/repair")  # the first invocation is still acting when the second one starts
    body = FailureEvent(workspace_id=sim.workspace_id, job_id=job, run_id=run).to_message()
    barrier, results = threading.Barrier(2), []

    def invocation():
        barrier.wait()
        # Same message id: the host handed the message out again because its lease ran out (the local runner
        # does not renew it). Owning the claim by message id would let both act.
        results.append(handle_message(body, message_id="msg-1", dequeue_count=1, max_dequeue_count=5, deps=deps))

    threads = [threading.Thread(target=invocation) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(h.result.status for h in results) == ["decided", "in_progress"]
    assert len(sim.requests_to("/runs/repair", "POST")) == 1
    [(deferred, delay)] = queued  # the second one looks again later instead of dropping the message
    assert deferred.source == "deferred" and 1 <= delay <= 5
    again = handle_message(deferred.to_message(), message_id="msg-2", dequeue_count=1, max_dequeue_count=5, deps=deps)
    assert again.result.status in ("duplicate", "skipped") and len(sim.requests_to("/runs/repair", "POST")) == 1
    [record] = deps.store.recent(since=record_epoch())
    assert record.status == "done" and record.repair_id is not None


def test_the_timer_following_the_rerun_while_the_worker_saves_overwrites_nothing(sim, deps):
    from shared.poller import poll

    deps, _ = deps
    job, run, failure = failed_job(sim, error="java.lang.OutOfMemoryError: Java heap space")
    sim.script_repair(run, succeed_if_resized(failure))
    # While the worker sends its email, the rerun ends and the timer ticks: what the action did is recorded with
    # the done record only, so that tick has nothing to follow yet; the next one records the outcome and
    # reverts the resize.
    seen_by_timer = []
    deps.notifier.during = lambda: seen_by_timer.append((poll(deps), deps.store.pending_outcomes()))
    body = FailureEvent(workspace_id=sim.workspace_id, job_id=job, run_id=run).to_message()

    handle_message(body, message_id="msg-1", dequeue_count=1, max_dequeue_count=5, deps=deps)
    assert seen_by_timer and all(pending == [] for _, pending in seen_by_timer)
    [record] = deps.store.recent(since=record_epoch())
    assert record.status == "done" and record.outcome == "pending" and not record.resize.reverted
    poll(deps)

    [record] = deps.store.recent(since=record_epoch())
    assert record.status == "done"  # the worker's change
    assert record.outcome == "succeeded" and record.resize.reverted and "reverted" in record.done  # the timer's
    assert set(record.notifications) == set(deps.notifier.sent) and len(record.notifications) == 2
    assert sim.job(job)["settings"]["job_clusters"][0]["new_cluster"] == CLUSTER
    assert len(sim.requests_to("/runs/repair", "POST")) == 1 and len(sim.requests_to("/jobs/update", "POST")) == 2


def record_epoch():
    from datetime import datetime, timezone

    return datetime(2000, 1, 1, tzinfo=timezone.utc)
