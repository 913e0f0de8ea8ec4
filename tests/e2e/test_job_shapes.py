"""Job shapes through the Functions against the simulator: for_each, run_job, legacy parameters, the cause line."""

from __future__ import annotations

import json

from localdev.databricks_sim.model import ForEachFailure, TaskFailure
from shared.taxonomy import Action

CLUSTER = {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_DS3_v2", "num_workers": 2}
OOM = TaskFailure(error="java.lang.OutOfMemoryError: Java heap space", error_trace="\tat java.util.Arrays.copyOf")
TIMEOUT = TaskFailure(error="java.net.SocketTimeoutException: Read timed out")


def only(records):
    assert len(records) == 1, [r.key for r in records]
    return records[0]


def test_for_each_is_diagnosed_from_its_iterations_resized_on_their_cluster_and_repaired_once(agent, sim):
    job = sim.add_job("regional_rollup", [{
        "task_key": "per_region",
        "for_each_task": {"inputs": json.dumps(["emea", "amer", "apac"]), "concurrency": 2,
                          "task": {"task_key": "per_region_iteration", "job_cluster_key": "etl",
                                   "notebook_task": {"notebook_path": "/rollup"}}},
    }], job_clusters=[{"job_cluster_key": "etl", "new_cluster": dict(CLUSTER)}])
    run = sim.fail_run(job, {"per_region": ForEachFailure({1: OOM})})

    agent.deliver(job, run)
    agent.settle()

    record = only(agent.decisions())
    assert record.action is Action.RETRY_WITH_NEW_PARAMS and record.category.value == "resource"
    assert record.failed_tasks[0].error == OOM.error and record.failed_tasks[0].iterations_failed == 1
    assert record.resize.job_cluster_key == "etl" and record.resize.after["node_type_id"] == "Standard_DS4_v2"
    assert len(sim.requests_to("/runs/repair", "POST")) == 1
    subjects = [p.read_text() for p in agent.email_dir.glob("*.eml")]
    assert subjects and all("Workload failed" not in s.split("\n\n", 1)[0] for s in subjects)


def test_run_job_parent_and_child_both_announced_one_decision_one_repair_on_the_parent(agent, sim):
    child_job = sim.add_job("load_customers", [{"task_key": "load", "job_cluster_key": "etl",
                                                "notebook_task": {"notebook_path": "/load"}}],
                            job_clusters=[{"job_cluster_key": "etl", "new_cluster": dict(CLUSTER)}])
    parent_job = sim.add_job("orchestrate", [{"task_key": "call_load", "run_job_task": {"job_id": child_job}}])
    parent = sim.fail_run(parent_job, {"call_load": TIMEOUT})
    child = [r.run_id for r in sim.workspace.runs.values() if r.job_id == child_job][0]

    agent.deliver(child_job, child)
    agent.deliver(parent_job, parent)
    agent.settle()
    agent.poll()

    record = only(agent.decisions())
    assert record.run_id == parent and record.action is Action.RETRY
    assert record.failed_tasks[0].linked_run_id == child
    repairs = sim.requests_to("/runs/repair", "POST")
    assert [r.body["run_id"] for r in repairs] == [parent]


def test_a_run_started_with_notebook_params_is_repaired_with_them(agent, sim):
    job = sim.add_job("legacy", [{"task_key": "nb", "job_cluster_key": "etl",
                                  "notebook_task": {"notebook_path": "/nb", "base_parameters": {"day": "base"}}}],
                      job_clusters=[{"job_cluster_key": "etl", "new_cluster": dict(CLUSTER)}])
    run = sim.fail_run(job, {"nb": TIMEOUT}, overriding_parameters={"notebook_params": {"day": "2024-06-11"}})

    agent.deliver(job, run)
    agent.settle()

    repairs = sim.requests_to("/runs/repair", "POST")
    assert len(repairs) == 1 and repairs[0].body["notebook_params"] == {"day": "2024-06-11"}
    assert sim.task_parameters(run)["nb"]["day"] == "2024-06-11"  # not the job's base value


def test_a_repair_refused_with_a_retryable_400_is_retried_not_emailed_as_refused(agent, sim):
    job = sim.add_job("nightly", [{"task_key": "main", "job_cluster_key": "etl",
                                   "notebook_task": {"notebook_path": "/x"}}],
                      job_clusters=[{"job_cluster_key": "etl", "new_cluster": dict(CLUSTER)}])
    run = sim.fail_run(job, {"main": TIMEOUT})
    sim.fail_with(400, times=1, error_code="COULD_NOT_ACQUIRE_LOCK", message="Could not acquire lock on the run",
                  path="/runs/repair")

    agent.deliver(job, run)
    agent.settle()

    record = only(agent.decisions())
    assert record.action is Action.RETRY and record.status == "done" and "refused" not in record.reason
    assert len(sim.requests_to("/runs/repair", "POST")) == 2  # refused once, then accepted on the redelivery
    assert sim.run(run)["repair_history"][-1]["type"] == "REPAIR"
