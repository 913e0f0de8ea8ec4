"""The simulator's cloud outage (POST/GET /sim/outage): while it lasts every run, repair and run-now that launches
a cluster fails with the launch failure Azure Databricks shows for a stockout; after it, runs end as scripted."""

from __future__ import annotations

import pytest
import requests

from localdev.databricks_sim import DatabricksSimulator, TaskFailure
from tests.fixtures.databricks import SIM_TOKEN
from tests.integration.test_databricks_simulator import CLUSTER, Api, pipeline

AUTH = {"Authorization": f"Bearer {SIM_TOKEN}"}
FAILURE = TaskFailure(error="java.net.SocketTimeoutException: Read timed out")


def admin(sim: DatabricksSimulator, method: str, op: str, body: dict | None = None):
    answer = requests.request(method, f"{sim.url}/sim/{op}", json=body, headers=AUTH, timeout=5)
    return answer.status_code, answer.json()


def test_a_run_started_during_the_outage_fails_to_launch_its_cluster_as_databricks_shows_it(sim):
    api = Api(sim)
    job = pipeline(sim, webhook_notifications={"on_failure": [{"id": "agent"}]})
    status, outage = admin(sim, "POST", "outage", {"seconds": 60})
    assert status == 200 and outage["active"] and 59 <= outage["seconds_left"] <= 60

    status, started = api.post("jobs/run-now", {"job_id": job})
    _, run = api.get("jobs/runs/get", run_id=started["run_id"])
    sim.finish_runs()
    _, run = api.get("jobs/runs/get", run_id=started["run_id"])

    assert run["state"]["life_cycle_state"] == "INTERNAL_ERROR" and run["state"]["result_state"] == "FAILED"
    assert run["status"]["termination_details"]["code"] == "CLOUD_FAILURE"
    assert run["status"]["termination_details"]["type"] == "CLOUD_FAILURE"
    first = run["tasks"][0]
    cluster_id = first["cluster_instance"]["cluster_id"]
    assert first["state"]["state_message"].startswith(
        f"Cluster {cluster_id} was terminated while waiting on it to be ready: Cluster {cluster_id} is in unexpected "
        "state Terminated: CLOUD_PROVIDER_LAUNCH_FAILURE(CLOUD_FAILURE): azure_error_code:SkuNotAvailable,"
        "azure_error_message:The requested size for resource")
    assert "spark_context_id" not in first["cluster_instance"]  # the cluster never came up
    assert [t["state"]["result_state"] for t in run["tasks"][1:]] == ["UPSTREAM_FAILED", "UPSTREAM_FAILED"]
    _, cluster = api.get("clusters/get", version="2.1", cluster_id=cluster_id)
    assert cluster["state"] == "TERMINATED"
    reason = cluster["termination_reason"]
    assert (reason["code"], reason["type"], reason["parameters"]["azure_error_code"]) == (
        "CLOUD_PROVIDER_LAUNCH_FAILURE", "CLOUD_FAILURE", "SkuNotAvailable")
    assert "is currently not available in location 'westeurope'" in reason["parameters"]["azure_error_message"]


def test_a_repair_during_the_outage_fails_and_leaves_its_scripted_outcome_for_the_repair_after_it(sim):
    api = Api(sim)
    run_id = sim.fail_run(pipeline(sim), {"transform": FAILURE})
    sim.script_repair(run_id, "success")  # the one scripted rerun: must not be used up by the outage
    sim.start_outage(30)

    _, first = api.post("jobs/runs/repair", {"run_id": run_id, "rerun_all_failed_tasks": True})
    sim.finish_runs()
    _, during = api.get("jobs/runs/get", run_id=run_id)
    assert during["state"]["result_state"] == "FAILED"
    assert "CLOUD_PROVIDER_LAUNCH_FAILURE" in during["state"]["state_message"]

    sim.advance(31)
    assert sim.outage()["active"] is False
    status, second = api.post("jobs/runs/repair", {"run_id": run_id, "rerun_all_failed_tasks": True,
                                                   "latest_repair_id": first["repair_id"]})
    sim.finish_runs()
    _, after = api.get("jobs/runs/get", run_id=run_id)
    assert status == 200 and after["state"]["result_state"] == "SUCCESS"
    assert sim.repair_count(run_id) == 2


def test_after_the_outage_a_run_ends_as_its_scenario_says_not_always_success(sim):
    job = pipeline(sim)
    sim.script_repair(job, FAILURE)  # the job's next run fails with its own cause
    sim.start_outage(10)
    during = sim.trigger_run(job)
    sim.advance(11)
    after = sim.trigger_run(job)

    assert "CLOUD_PROVIDER_LAUNCH_FAILURE" in sim.run(during)["state"]["state_message"]
    ended = sim.run(after)
    assert ended["state"]["result_state"] == "FAILED" and ended["status"]["termination_details"]["code"] == \
        "RUN_EXECUTION_ERROR"
    assert sim.run(sim.trigger_run(job))["state"]["result_state"] == "SUCCESS"  # the script is used up now


def test_a_run_that_launches_no_cluster_is_not_hit(sim):
    serverless = sim.add_job("kpis", [{"task_key": "refresh", "sql_task": {
        "file": {"path": "/kpis.sql", "source": "WORKSPACE"}, "warehouse_id": "3f8a2b71c9d04e15"}}])
    sim.start_outage(60)
    assert sim.run(sim.trigger_run(serverless))["state"]["result_state"] == "SUCCESS"


def test_every_for_each_iteration_that_starts_during_the_outage_fails_to_launch(sim):
    job = sim.add_job("per_region", [{"task_key": "loop", "for_each_task": {
        "inputs": '["emea", "amer"]', "task": {"task_key": "region", "job_cluster_key": "etl",
                                              "notebook_task": {"notebook_path": "/r"}}}}],
                      job_clusters=[{"job_cluster_key": "etl", "new_cluster": dict(CLUSTER)}])
    sim.start_outage(60)
    run_id = sim.trigger_run(job)
    _, run = Api(sim).get("jobs/runs/get", run_id=run_id)
    _, loop = Api(sim).get("jobs/runs/get", run_id=run["tasks"][0]["run_id"])
    assert run["state"]["result_state"] == "FAILED"
    assert all("CLOUD_PROVIDER_LAUNCH_FAILURE" in i["state"]["state_message"] for i in loop["iterations"])


def test_the_outage_admin_routes_check_their_body_and_end_on_zero(sim):
    assert admin(sim, "GET", "outage") == (200, {"active": False})
    status, body = admin(sim, "POST", "outage", {"seconds": "soon"})
    assert status == 400 and "seconds" in body["message"]
    status, body = admin(sim, "POST", "outage", {"seconds": 5, "reason": "not a code"})
    assert status == 400 and "reason" in body["message"]
    status, body = admin(sim, "POST", "outage", {"seconds": 5, "reason": "CLOUD_PROVIDER_RESOURCE_STOCKOUT",
                                                 "azure_error_code": "ZonalAllocationFailed", "message": "no VMs"})
    assert status == 200 and body["reason"] == "CLOUD_PROVIDER_RESOURCE_STOCKOUT"
    assert body["parameters"] == {"azure_error_code": "ZonalAllocationFailed", "azure_error_message": "no VMs"}
    job = pipeline(sim)
    status, triggered = admin(sim, "POST", "trigger", {"job_id": job})
    assert status == 200 and "CLOUD_PROVIDER_RESOURCE_STOCKOUT(CLOUD_FAILURE): azure_error_code:ZonalAllocationFailed" \
        in sim.run(triggered["run_id"])["state"]["state_message"]
    assert admin(sim, "POST", "outage", {"seconds": 0})[1]["active"] is False
    assert sim.run(sim.trigger_run(job))["state"]["result_state"] == "SUCCESS"
    assert admin(sim, "GET", "outage")[1]["active"] is False
    requests_logged = [r for r in sim.requests if "/sim/" in r.path]
    assert requests_logged == []  # admin routes are never in the request log (the storm reads it)


def test_the_official_sdk_reads_an_outage_failure_with_its_own_enums(sim):
    sdk = pytest.importorskip("databricks.sdk")
    from databricks.sdk.service import compute, jobs

    job = pipeline(sim)
    sim.start_outage(60)
    run_id = sim.trigger_run(job)
    client = sdk.WorkspaceClient(config=sdk.core.Config(host=sim.url, token=SIM_TOKEN, auth_type="pat"))

    run = client.jobs.get_run(run_id)
    cluster = client.clusters.get(run.tasks[0].cluster_instance.cluster_id)

    # Unknown enum values would parse to None: these are the SDK's own codes (jobs.TerminationCodeCode,
    # jobs.TerminationTypeType, compute.TerminationReasonCode / TerminationReasonType).
    assert run.state.life_cycle_state == jobs.RunLifeCycleState.INTERNAL_ERROR
    assert run.status.termination_details.code == jobs.TerminationCodeCode.CLOUD_FAILURE
    assert run.status.termination_details.type == jobs.TerminationTypeType.CLOUD_FAILURE
    assert cluster.termination_reason.code == compute.TerminationReasonCode.CLOUD_PROVIDER_LAUNCH_FAILURE
    assert cluster.termination_reason.type == compute.TerminationReasonType.CLOUD_FAILURE
    assert cluster.termination_reason.parameters["azure_error_code"] == "SkuNotAvailable"
