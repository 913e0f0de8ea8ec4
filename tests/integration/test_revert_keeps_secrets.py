"""A plaintext secret in a job cluster's spark_conf survives every resize path byte for byte: the decision
store masks it (for people), and the revert never writes what the store holds, only the fields it changed,
onto the spec Databricks has now."""

from __future__ import annotations

import copy

import pytest

from localdev.databricks_sim.model import TaskFailure
from shared.classify import classify
from shared.events import FailureEvent
from shared.pipeline import PipelineDeps
from shared.poller import poll
from shared.settings import Settings
from shared.state import MemoryStateStore
from shared.store import MemoryDecisionStore
from shared.taxonomy import Action
from shared.worker import handle_message
from shared.workspaces import resolve_workspace, workspace_key
from tests.fixtures.databricks import SIM_TOKEN

SECRET = "p1ain+Text/Storage==Key"
CONF_KEY = "fs.azure.account.key.acct.dfs.core.windows.net"
CLUSTER = {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_DS3_v2", "num_workers": 2,
           "spark_conf": {CONF_KEY: SECRET, "spark.sql.shuffle.partitions": "200"},
           "custom_tags": {"team": "finance"}}
OOM = TaskFailure(error="java.lang.OutOfMemoryError: Java heap space")


class Notifier:
    def notify(self, record, job, kind=None):
        return [f"{record.key}:{kind.value if kind else 'decision'}"]


@pytest.fixture
def deps(sim, jobs_api):
    settings = Settings(databricks_workspace_url=sim.url, databricks_pat_token=SIM_TOKEN,
                        databricks_workspace_id=sim.workspace_id)
    return PipelineDeps(
        settings=settings, jobs_api=lambda wid: jobs_api,
        workspace_key=lambda wid: workspace_key(resolve_workspace(settings, wid)), store=MemoryDecisionStore(),
        state=MemoryStateStore(), notifier=Notifier(), classify=classify, enqueue=lambda event, delay: None,
    )


def job_with_a_secret(sim):
    return sim.add_job("secret_etl", [{"task_key": "main", "notebook_task": {"notebook_path": "/x"},
                                       "job_cluster_key": "etl"}],
                       job_clusters=[{"job_cluster_key": "etl", "new_cluster": copy.deepcopy(CLUSTER)}])


def deliver(sim, deps, job, run):
    body = FailureEvent(workspace_id=sim.workspace_id, job_id=job, run_id=run).to_message()
    return handle_message(body, message_id="m", dequeue_count=1, max_dequeue_count=5, deps=deps)


def cluster(sim, job):
    return sim.job(job)["settings"]["job_clusters"][0]["new_cluster"]


def test_resize_then_refused_repair_then_revert(sim, deps):
    job = job_with_a_secret(sim)
    run = sim.fail_run(job, {"main": OOM})
    sim.fail_with(403, error_code="PERMISSION_DENIED", message="no CAN_MANAGE_RUN on this job", path="/runs/repair")

    deliver(sim, deps, job, run)

    [record] = deps.store.recent(since=_epoch())
    assert record.action is Action.SEND_EMAIL and "refused" in record.reason
    assert cluster(sim, job) == CLUSTER  # put back, secret byte for byte
    assert SECRET not in record.model_dump_json() and "***" in record.model_dump_json()  # people see it masked


def test_resize_then_rerun_then_revert(sim, deps):
    job = job_with_a_secret(sim)
    run = sim.fail_run(job, {"main": OOM})

    deliver(sim, deps, job, run)
    assert cluster(sim, job)["node_type_id"] == "Standard_DS4_v2"
    assert cluster(sim, job)["spark_conf"][CONF_KEY] == SECRET  # the resize kept it too
    sim.finish_runs()
    poll(deps)

    [record] = deps.store.recent(since=_epoch())
    assert record.outcome == "succeeded" and record.resize.reverted
    assert cluster(sim, job) == CLUSTER


def test_a_second_resize_whose_repair_is_refused_puts_the_original_back_not_the_masked_copy(sim, deps):
    job = job_with_a_secret(sim)
    run = sim.fail_run(job, {"main": OOM})
    sim.script_repair(run, OOM)  # the first rerun, one size larger, runs out of memory again

    deliver(sim, deps, job, run)
    sim.finish_runs()
    poll(deps)  # the rerun failed: the larger cluster stays for the next attempt
    assert cluster(sim, job)["node_type_id"] == "Standard_DS4_v2"
    sim.fail_with(403, error_code="PERMISSION_DENIED", message="no CAN_MANAGE_RUN on this job", path="/runs/repair")
    deliver(sim, deps, job, run)

    records = sorted(deps.store.recent(since=_epoch()), key=lambda r: r.attempt)
    assert [r.action for r in records] == [Action.RETRY_WITH_NEW_PARAMS, Action.SEND_EMAIL]
    assert cluster(sim, job) == CLUSTER  # DS5 → DS3 in one inverse patch; the key was never overwritten


def test_an_owners_change_to_another_field_after_the_resize_survives_the_revert(sim, deps):
    job = job_with_a_secret(sim)
    run = sim.fail_run(job, {"main": OOM})
    deliver(sim, deps, job, run)
    changed = cluster(sim, job)
    changed["custom_tags"] = {"team": "finance", "cost_center": "42"}  # edited by hand while the rerun ran
    sim.workspace.update_job(job, {"job_clusters": [{"job_cluster_key": "etl", "new_cluster": changed}]})
    sim.finish_runs()
    poll(deps)

    assert cluster(sim, job) == {**CLUSTER, "custom_tags": {"team": "finance", "cost_center": "42"}}


def _epoch():
    from datetime import datetime, timezone

    return datetime(2000, 1, 1, tzinfo=timezone.utc)
