"""Fidelity: the official databricks-sdk, as a client, reads every kind of simulator answer, and every field the
simulator sends is one the SDK's models know (a misspelt or invented field would be dropped by from_dict and
show up here). Error bodies parse into the SDK's error classes; the SDK's own retries see the retryable ones."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from localdev.databricks_sim import ClusterReason, DatabricksSimulator, ForEachFailure, TaskFailure
from tests.fixtures.databricks import SIM_TOKEN

sdk = pytest.importorskip("databricks.sdk")
from databricks.sdk import errors as sdk_errors  # noqa: E402
from databricks.sdk.service import compute, jobs  # noqa: E402

AUTH = {"Authorization": f"Bearer {SIM_TOKEN}"}
CLUSTER = {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_DS3_v2", "num_workers": 2,
           "spark_conf": {"spark.sql.shuffle.partitions": "200"}, "custom_tags": {"team": "data"},
           "azure_attributes": {"availability": "ON_DEMAND_AZURE", "first_on_demand": 1}}
OOM = TaskFailure(error="java.lang.OutOfMemoryError: Java heap space", error_trace="\tat java.util.Arrays",
                  cluster_reason=ClusterReason("DRIVER_OUT_OF_MEMORY", parameters={"databricks_error_message": "OOM"}))


def sdk_client(sim: DatabricksSimulator, token: str = SIM_TOKEN, retry_timeout_seconds: int = 20):
    config = sdk.core.Config(host=sim.url, token=token, auth_type="pat", retry_timeout_seconds=retry_timeout_seconds)
    return sdk.WorkspaceClient(config=config)


@pytest.fixture
def client(sim: DatabricksSimulator):
    return sdk_client(sim)


def raw(sim, op: str, **params) -> dict[str, Any]:
    answer = requests.get(f"{sim.url}/api/2.2/{op}", params=params, headers=AUTH, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()


def unknown_fields(sent: Any, understood: Any, path: str = "") -> list[str]:
    """Paths of keys in `sent` that the SDK's as_dict() does not give back (fields its model does not have)."""
    if isinstance(sent, dict) and isinstance(understood, dict):
        out = [f"{path}.{k}" for k in sent if k not in understood]
        for key in sent.keys() & understood.keys():
            out += unknown_fields(sent[key], understood[key], f"{path}.{key}")
        return out
    if isinstance(sent, list) and isinstance(understood, list):
        return [p for a, b in zip(sent, understood) for p in unknown_fields(a, b, f"{path}[]")]
    return []


def assert_model_knows(model: Any, sent: dict[str, Any]) -> Any:
    parsed = model.from_dict(json.loads(json.dumps(sent)))
    assert unknown_fields(sent, parsed.as_dict()) == []
    return parsed


def busy_workspace(sim: DatabricksSimulator) -> dict[str, int]:
    """One job of every shape, each with a failed run; returns names -> run ids (and job ids)."""
    child = sim.add_job("child_load", [{"task_key": "load", "job_cluster_key": "etl",
                                        "notebook_task": {"notebook_path": "/load"}}],
                        job_clusters=[{"job_cluster_key": "etl", "new_cluster": dict(CLUSTER)}])
    shapes = sim.add_job("all_shapes", [
        {"task_key": "per_region", "for_each_task": {
            "inputs": '["emea", "amer"]', "concurrency": 2,
            "task": {"task_key": "per_region_iteration", "job_cluster_key": "etl", "max_retries": 0,
                     "notebook_task": {"notebook_path": "/r", "base_parameters": {"region": "{{input}}"}}}}},
        {"task_key": "call_child", "run_job_task": {"job_id": child, "job_parameters": {"day": "1"}}},
        {"task_key": "check", "condition_task": {"op": "EQUAL_TO", "left": "a", "right": "a"}},
        {"task_key": "refresh", "depends_on": [{"task_key": "check", "outcome": "true"}],
         "sql_task": {"query": {"query_id": "8c1f"}, "warehouse_id": "3f8a2b71c9d04e15"}},
        {"task_key": "dlt", "pipeline_task": {"pipeline_id": "a1b2c3d4-0000", "full_refresh": False}},
        {"task_key": "dbt", "environment_key": "dbt", "dbt_task": {
            "commands": ["dbt run"], "warehouse_id": "3f8a2b71c9d04e15", "project_directory": "/Repos/bi"}},
        {"task_key": "py", "job_cluster_key": "etl", "max_retries": 1,
         "spark_python_task": {"python_file": "/p.py", "parameters": ["--x", "1"]}},
    ], job_clusters=[{"job_cluster_key": "etl", "new_cluster": dict(CLUSTER)}],
        environments=[{"environment_key": "dbt", "spec": {"client": "2", "dependencies": ["dbt-databricks"]}}],
        parameters=[{"name": "day", "default": "1"}], tags={"team": "data"},
        email_notifications={"on_failure": ["data@contoso.example"]},
        webhook_notifications={"on_failure": [{"id": "5b1f7c1e"}]})
    failed = sim.fail_run(shapes, {"per_region": ForEachFailure({1: OOM}), "call_child": OOM, "py": OOM,
                                   "dlt": TaskFailure(error="Update 7a1c failed")}, job_parameters={"day": "2"})
    return {"child_job": child, "job": shapes, "run": failed}


def test_runs_get_of_every_shape_parses_with_no_unknown_field(sim, client):
    ids = busy_workspace(sim)
    sim.page_size = 2  # the SDK must follow next_page_token through tasks and job_clusters
    sent = raw(sim, "jobs/runs/get", run_id=ids["run"], include_history="true")
    sim.page_size = 100

    run = client.jobs.get_run(ids["run"], include_history=True)

    assert_model_knows(jobs.Run, raw(sim, "jobs/runs/get", run_id=ids["run"], include_history="true"))
    assert "next_page_token" in sent
    assert {t.task_key for t in run.tasks} == {"per_region", "call_child", "check", "refresh", "dlt", "dbt", "py"}
    assert run.state.result_state == jobs.RunResultState.FAILED
    assert run.status.termination_details.code == jobs.TerminationCodeCode.RUN_EXECUTION_ERROR
    parent = next(t for t in run.tasks if t.task_key == "per_region")
    assert parent.for_each_task.stats.task_run_stats.failed_iterations == 1
    assert parent.for_each_task.stats.error_message_stats[0].error_message == OOM.error


def test_a_for_each_parent_read_as_a_run_lists_its_iterations(sim, client):
    ids = busy_workspace(sim)
    parent = next(t for t in sim.run(ids["run"])["tasks"] if t["task_key"] == "per_region")

    sent = raw(sim, "jobs/runs/get", run_id=parent["run_id"])
    run = client.jobs.get_run(parent["run_id"])
    failed = next(i for i in run.iterations if i.state.result_state == jobs.RunResultState.FAILED)
    output = client.jobs.get_run_output(failed.run_id)

    assert_model_knows(jobs.Run, sent)
    assert len(run.iterations) == 2 and failed.cluster_instance.cluster_id
    assert output.error == OOM.error and output.metadata.run_id == failed.run_id
    assert_model_knows(jobs.RunOutput, raw(sim, "jobs/runs/get-output", run_id=failed.run_id))


def test_get_output_of_run_job_sql_dbt_and_failed_tasks_parses(sim, client):
    ids = busy_workspace(sim)
    tasks = {t["task_key"]: t for t in sim.run(ids["run"])["tasks"]}
    ok = sim.succeed_run(ids["job"])
    ok_tasks = {t["task_key"]: t for t in sim.run(ok)["tasks"]}

    for task in (*tasks.values(), ok_tasks["refresh"], ok_tasks["dbt"], ok_tasks["per_region"]):
        if task["state"]["result_state"] in ("UPSTREAM_FAILED", "UPSTREAM_CANCELED"):
            continue
        assert_model_knows(jobs.RunOutput, raw(sim, "jobs/runs/get-output", run_id=task["run_id"]))
    child_output = client.jobs.get_run_output(tasks["call_child"]["run_id"])
    child = client.jobs.get_run(child_output.run_job_output.run_id)
    sql = client.jobs.get_run_output(ok_tasks["refresh"]["run_id"])

    assert child.trigger == jobs.TriggerType.RUN_JOB_TASK
    assert child.trigger_info.run_id == tasks["call_child"]["run_id"]
    assert_model_knows(jobs.Run, raw(sim, "jobs/runs/get", run_id=child.run_id))
    assert sql.sql_output.query_output.warehouse_id == "3f8a2b71c9d04e15"
    assert client.jobs.get_run_output(tasks["py"]["run_id"]).error_trace == OOM.error_trace


def test_jobs_get_and_clusters_get_parse(sim, client):
    ids = busy_workspace(sim)
    py = [t for t in sim.run(ids["run"])["tasks"] if t["task_key"] == "py"][-1]
    cluster_id = py["cluster_instance"]["cluster_id"]

    job = client.jobs.get(ids["job"])
    cluster = client.clusters.get(cluster_id)

    assert_model_knows(jobs.Job, raw(sim, "jobs/get", job_id=ids["job"]))
    assert_model_knows(compute.ClusterDetails, raw(sim, "clusters/get", cluster_id=cluster_id))
    assert job.settings.job_clusters[0].new_cluster.node_type_id == "Standard_DS3_v2"
    assert cluster.termination_reason.code == compute.TerminationReasonCode.DRIVER_OUT_OF_MEMORY


def test_runs_list_pages_parse_and_the_sdk_walks_them_all(sim, client):
    busy_workspace(sim)
    sim.add_busy_runs(120)
    sent = raw(sim, "jobs/runs/list", limit=25, expand_tasks="true")

    every = list(client.jobs.list_runs(completed_only=True, limit=25))

    assert_model_knows(jobs.ListRunsResponse, sent)
    busy_job = sim.workspace.bulk.items[0].job_id
    assert_model_knows(jobs.ListRunsResponse, raw(sim, "jobs/runs/list", job_id=busy_job, expand_tasks="true"))
    assert len(every) == len({r.run_id for r in every}) == 120 + 2  # the failed run and its run_job child


def test_post_answers_and_jobs_list_parse(sim, client):
    ids = busy_workspace(sim)

    def post(op: str, body: dict) -> dict:
        answer = requests.post(f"{sim.url}/api/2.2/{op}", json=body, headers=AUTH, timeout=5)
        assert answer.status_code == 200, answer.text
        return answer.json()

    assert_model_knows(jobs.RunNowResponse, post("jobs/run-now", {"job_id": ids["child_job"]}))
    assert_model_knows(jobs.RepairRunResponse, post("jobs/runs/repair", {"run_id": ids["run"],
                                                                          "rerun_all_failed_tasks": True}))
    assert_model_knows(jobs.SubmitRunResponse, post("jobs/runs/submit", {"run_name": "one-off", "tasks": [
        {"task_key": "t", "new_cluster": CLUSTER, "notebook_task": {"notebook_path": "/t"}}]}))
    assert_model_knows(jobs.ListJobsResponse, raw(sim, "jobs/list", expand_tasks="true"))
    for n in range(30):
        sim.add_job(f"filler_{n}", [{"task_key": "t", "notebook_task": {"notebook_path": "/t"}}])
    listed = list(client.jobs.list(limit=7))
    assert len(listed) == len({j.job_id for j in listed}) == 32
    assert listed[-1].settings.name == "child_load" and not listed[0].settings.tasks
    assert [j.job_id for j in client.jobs.list(name="ALL_SHAPES", expand_tasks=True)] == [ids["job"]]
    assert len(next(iter(client.jobs.list(name="all_shapes", expand_tasks=True))).settings.tasks) == 7


def test_legacy_parameters_round_trip_through_the_sdk(sim, client):
    job = sim.add_job("legacy", [{"task_key": "nb", "notebook_task": {"notebook_path": "/nb"}}])

    waiter = client.jobs.run_now(job, notebook_params={"day": "2024-06-11"})
    run = client.jobs.get_run(waiter.run_id)

    assert run.overriding_parameters.notebook_params == {"day": "2024-06-11"}
    assert_model_knows(jobs.Run, raw(sim, "jobs/runs/get", run_id=waiter.run_id))


@pytest.mark.parametrize(("inject", "error", "code"), [
    # The SDK itself turns "Job … does not exist." into ResourceDoesNotExist (errors/overrides.py).
    (None, sdk_errors.ResourceDoesNotExist, "INVALID_PARAMETER_VALUE"),
    ("lock", sdk_errors.BadRequest, "COULD_NOT_ACQUIRE_LOCK"),
    ("error", sdk_errors.InternalError, "INTERNAL_ERROR"),
])
def test_error_bodies_parse_into_the_sdk_error_classes(sim, inject, error, code):
    if inject:
        sim.inject(inject, times=50)
    client = sdk_client(sim, retry_timeout_seconds=1)  # the SDK retries 500s; give up quickly

    with pytest.raises(error) as caught:
        client.jobs.get(job_id=999)

    assert caught.value.error_code == code


def test_auth_errors_parse_into_the_sdk_error_classes(sim):
    anonymous = requests.get(f"{sim.url}/api/2.2/jobs/runs/list", timeout=5)
    wrong = sdk_client(sim, token="dapi-wrong")

    with pytest.raises(sdk_errors.PermissionDenied):
        wrong.jobs.get(1)
    assert anonymous.status_code == 401


@pytest.mark.parametrize("kind", ["unexpected", "faster"])
def test_the_sdk_retries_the_retryable_400_texts_and_then_succeeds(sim, client, kind):
    job = sim.add_job("nb", [{"task_key": "t", "notebook_task": {"notebook_path": "/t"}}])
    sim.inject(kind, path="jobs/get", times=1)

    assert client.jobs.get(job).job_id == job
    assert sim.request_count("jobs/get") == 2


def test_the_sdk_resends_a_repair_whose_answer_was_lost_and_reports_an_error_for_a_repair_that_happened(sim, client):
    """What a naive client meets after "answer lost after the action": the SDK re-sends the POST (a dropped
    connection is retryable to it); Databricks refuses the second repair, so the caller sees an error although
    the repair took place. Only reading repair_history tells the truth."""
    ids = busy_workspace(sim)
    sim.inject("lost_drop", path="runs/repair", times=1)

    with pytest.raises(sdk_errors.InvalidParameterValue, match="latest repair ID"):
        client.jobs.repair_run(ids["run"], rerun_tasks=["py"])

    history = client.jobs.get_run(ids["run"], include_history=True).repair_history
    assert [h.type for h in history].count(jobs.RepairHistoryItemType.REPAIR) == 1
    assert (sim.request_count("jobs/runs/repair"), sim.applied_count("jobs/runs/repair")) == (2, 1)
