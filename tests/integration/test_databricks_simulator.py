"""The workspace simulator speaks the Jobs API as Databricks does: raw HTTP against it, no client in between."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from localdev.databricks_sim import ClusterReason, DatabricksSimulator, TaskFailure, succeed_if_resized
from localdev.databricks_sim.scenarios import load_demo_workspace
from tests.fixtures.databricks import SIM_TOKEN

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_DS3_v2", "num_workers": 2}
AUTH = {"Authorization": f"Bearer {SIM_TOKEN}"}


class Api:
    """Plain requests against the simulator; returns (status, json)."""

    def __init__(self, sim: DatabricksSimulator) -> None:
        self.url = sim.url

    def get(self, op: str, version: str = "2.2", **params):
        answer = requests.get(f"{self.url}/api/{version}/{op}", params=params, headers=AUTH, timeout=5)
        return answer.status_code, answer.json()

    def post(self, op: str, body: dict, version: str = "2.2"):
        answer = requests.post(f"{self.url}/api/{version}/{op}", json=body, headers=AUTH, timeout=5)
        return answer.status_code, answer.json()


@pytest.fixture
def api(sim) -> Api:
    return Api(sim)


def pipeline(sim: DatabricksSimulator, **settings) -> int:
    """extract -> transform -> load on job cluster "etl"."""
    keys = ["extract", "transform", "load"]
    return sim.add_job(
        "nightly_sales_etl",
        [{"task_key": k, "job_cluster_key": "etl", "notebook_task": {"notebook_path": f"/etl/{k}"},
          **({"depends_on": [{"task_key": keys[i - 1]}]} if i else {})} for i, k in enumerate(keys)],
        job_clusters=[{"job_cluster_key": "etl", "new_cluster": dict(CLUSTER)}],
        **settings,
    )


FAILURE = TaskFailure(error="java.lang.OutOfMemoryError: Java heap space", error_trace="\tat java.util.Arrays")


# --- Auth and errors -------------------------------------------------------------------------------------


def test_a_request_without_a_bearer_token_is_401_unauthenticated(sim):
    answer = requests.get(f"{sim.url}/api/2.2/jobs/runs/list", timeout=5)

    assert answer.status_code == 401
    assert answer.json()["error_code"] == "UNAUTHENTICATED"


def test_a_wrong_token_is_403_invalid_access_token(sim):
    answer = requests.get(f"{sim.url}/api/2.2/jobs/runs/list", headers={"Authorization": "Bearer dapi-x"}, timeout=5)

    assert (answer.status_code, answer.json()) == (403, {"error_code": "PERMISSION_DENIED",
                                                         "message": "Invalid access token."})


def test_an_unknown_endpoint_is_404_endpoint_not_found(api):
    assert api.get("jobs/runs/explode") == (404, {"error_code": "ENDPOINT_NOT_FOUND",
                                                  "message": "No API found for 'GET /api/2.2/jobs/runs/explode'"})


def test_a_missing_job_is_400_invalid_parameter_value_does_not_exist(api):
    assert api.get("jobs/get", job_id=42) == (400, {"error_code": "INVALID_PARAMETER_VALUE",
                                                    "message": "Job 42 does not exist."})


def test_throttle_answers_429_with_retry_after_then_serves_normally(sim):
    sim.throttle(times=1, retry_after=7)

    first = requests.get(f"{sim.url}/api/2.2/jobs/runs/list", headers=AUTH, timeout=5)
    second = requests.get(f"{sim.url}/api/2.2/jobs/runs/list", headers=AUTH, timeout=5)

    assert (first.status_code, first.headers["Retry-After"], first.json()["error_code"]) == (
        429, "7", "REQUEST_LIMIT_EXCEEDED")
    assert second.status_code == 200


def test_a_502_fault_is_an_html_gateway_page(sim):
    sim.fail_with(502)

    answer = requests.get(f"{sim.url}/api/2.2/jobs/runs/list", headers=AUTH, timeout=5)

    assert answer.status_code == 502
    assert answer.headers["Content-Type"].startswith("text/html")


def test_every_request_is_logged_with_its_query_and_body(sim, api):
    api.post("jobs/runs/cancel", {"run_id": 1})
    api.get("jobs/runs/list", limit=5)

    assert [(r.method, r.path, r.query, r.body) for r in sim.requests] == [
        ("POST", "/api/2.2/jobs/runs/cancel", {}, {"run_id": 1}),
        ("GET", "/api/2.2/jobs/runs/list", {"limit": "5"}, {}),
    ]


# --- Failed runs -----------------------------------------------------------------------------------------


def test_fail_run_makes_a_terminated_failed_run_with_downstream_tasks_upstream_failed(sim, api):
    run_id = sim.fail_run(pipeline(sim), {"transform": FAILURE})

    _, run = api.get("jobs/runs/get", run_id=run_id)

    assert run["state"]["life_cycle_state"] == "TERMINATED" and run["state"]["result_state"] == "FAILED"
    assert [(t["task_key"], t["state"]["result_state"]) for t in run["tasks"]] == [
        ("extract", "SUCCESS"), ("transform", "FAILED"), ("load", "UPSTREAM_FAILED")]
    assert run["status"]["termination_details"] == {
        "code": "RUN_EXECUTION_ERROR", "type": "CLIENT_ERROR",
        "message": "Task transform failed with message: Workload failed, see run output for details. "
                   "This caused all downstream tasks to get skipped."}


def test_a_task_with_max_retries_shows_one_task_run_per_attempt(sim, api):
    job_id = sim.add_job("retrying", [{"task_key": "only", "max_retries": 2, "notebook_task": {"notebook_path": "/x"}}])

    _, run = api.get("jobs/runs/get", run_id=sim.fail_run(job_id, {"only": FAILURE}))

    assert [(t["task_key"], t["attempt_number"]) for t in run["tasks"]] == [("only", 0), ("only", 1), ("only", 2)]
    assert len({t["run_id"] for t in run["tasks"]}) == 3


def test_get_output_of_a_task_run_has_error_trace_and_metadata(sim, api):
    _, run = api.get("jobs/runs/get", run_id=sim.fail_run(pipeline(sim), {"transform": FAILURE}))
    task_run_id = run["tasks"][1]["run_id"]

    status, output = api.get("jobs/runs/get-output", run_id=task_run_id)

    assert status == 200
    assert (output["error"], output["error_trace"]) == (FAILURE.error, FAILURE.error_trace)
    assert output["metadata"]["run_id"] == task_run_id and output["metadata"]["job_run_id"] == run["run_id"]


def test_get_output_of_a_multi_task_parent_is_refused(sim, api):
    run_id = sim.fail_run(pipeline(sim), {"transform": FAILURE})

    status, body = api.get("jobs/runs/get-output", run_id=run_id)

    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert body["message"].startswith("Retrieving the output of runs with multiple tasks is not supported")


def test_a_cluster_failure_shows_in_clusters_get(sim, api):
    reason = ClusterReason("AZURE_QUOTA_EXCEEDED_EXCEPTION", "CLIENT_ERROR", {"azure_error_code": "QuotaExceeded"})
    run_id = sim.fail_run(pipeline(sim), {"extract": TaskFailure(
        error=None, termination_code="CLUSTER_ERROR", life_cycle_state="INTERNAL_ERROR", cluster_reason=reason)})
    _, run = api.get("jobs/runs/get", run_id=run_id)

    status, cluster = api.get("clusters/get", version="2.1",
                              cluster_id=run["tasks"][0]["cluster_instance"]["cluster_id"])

    assert run["state"]["life_cycle_state"] == "INTERNAL_ERROR"
    assert status == 200 and cluster["state"] == "TERMINATED"
    assert cluster["termination_reason"] == {"code": "AZURE_QUOTA_EXCEEDED_EXCEPTION", "type": "CLIENT_ERROR",
                                             "parameters": {"azure_error_code": "QuotaExceeded"}}
    assert cluster["node_type_id"] == "Standard_DS3_v2"


def test_a_user_cancelled_run_is_canceled_with_user_canceled(sim, api):
    run_id = sim.fail_run(pipeline(sim), {"extract": TaskFailure(
        error=None, result_state="CANCELED", termination_code="USER_CANCELED")})

    _, run = api.get("jobs/runs/get", run_id=run_id)

    assert run["state"]["result_state"] == "CANCELED"
    assert run["status"]["termination_details"]["code"] == "USER_CANCELED"
    assert [t["state"]["result_state"] for t in run["tasks"]] == ["CANCELED", "UPSTREAM_CANCELED", "UPSTREAM_CANCELED"]


# --- Pagination ------------------------------------------------------------------------------------------


def test_runs_get_pages_arrays_with_next_page_token_in_2_2(sim, api):
    sim.page_size = 2
    run_id = sim.fail_run(pipeline(sim), {"transform": FAILURE})

    _, first = api.get("jobs/runs/get", run_id=run_id)
    _, second = api.get("jobs/runs/get", run_id=run_id, page_token=first["next_page_token"])

    assert [t["task_key"] for t in first["tasks"]] == ["extract", "transform"]
    assert [t["task_key"] for t in second["tasks"]] == ["load"]
    assert "next_page_token" not in second


def test_runs_get_in_2_1_returns_whole_arrays(sim, api):
    sim.page_size = 2
    run_id = sim.fail_run(pipeline(sim), {"transform": FAILURE})

    _, run = api.get("jobs/runs/get", version="2.1", run_id=run_id)

    assert len(run["tasks"]) == 3 and "next_page_token" not in run


def test_runs_list_pages_newest_first_and_refuses_a_limit_over_25(sim, api):
    job_id = pipeline(sim)
    ids = []
    for _ in range(3):
        sim.advance(1)
        ids.append(sim.succeed_run(job_id))

    _, page_1 = api.get("jobs/runs/list", limit=2)
    _, page_2 = api.get("jobs/runs/list", limit=2, page_token=page_1["next_page_token"])

    assert [r["run_id"] for r in page_1["runs"] + page_2["runs"]] == ids[::-1]
    assert (page_1["has_more"], page_2["has_more"]) == (True, False)
    assert "tasks" not in page_1["runs"][0]
    assert api.get("jobs/runs/list", limit=26)[0] == 400


def test_runs_list_with_nothing_to_show_has_no_runs_key(api):
    assert api.get("jobs/runs/list") == (200, {"has_more": False})


# --- Repair ----------------------------------------------------------------------------------------------


def test_repair_adds_a_repair_item_with_new_task_run_ids_for_failed_and_skipped_tasks(sim, api):
    run_id = sim.fail_run(pipeline(sim), {"transform": FAILURE})
    _, before = api.get("jobs/runs/get", run_id=run_id)

    status, body = api.post("jobs/runs/repair", {"run_id": run_id, "rerun_all_failed_tasks": True})
    _, after = api.get("jobs/runs/get", run_id=run_id, include_history="true")

    assert status == 200
    repair = after["repair_history"][-1]
    assert (repair["type"], repair["id"]) == ("REPAIR", body["repair_id"])
    assert len(repair["task_run_ids"]) == 2
    assert not set(repair["task_run_ids"]) & {t["run_id"] for t in before["tasks"]}
    assert [t["task_key"] for t in after["tasks"][3:]] == ["transform", "load"]
    assert after["state"]["result_state"] == "SUCCESS"


def test_runs_get_without_include_history_has_no_repair_history(sim, api):
    _, run = api.get("jobs/runs/get", run_id=sim.fail_run(pipeline(sim), {"transform": FAILURE}))

    assert "repair_history" not in run


def test_repair_is_refused_while_the_run_is_in_progress(sim, api):
    sim.rerun_seconds = 3600
    run_id = sim.fail_run(pipeline(sim), {"transform": FAILURE})
    api.post("jobs/runs/repair", {"run_id": run_id, "rerun_all_failed_tasks": True})

    status, body = api.post("jobs/runs/repair", {"run_id": run_id, "rerun_all_failed_tasks": True})

    assert (status, body["error_code"]) == (400, "INVALID_STATE")


def test_a_rerun_stays_running_until_rerun_seconds_have_passed(sim, api):
    sim.rerun_seconds = 60
    run_id = sim.fail_run(pipeline(sim), {"transform": FAILURE})
    api.post("jobs/runs/repair", {"run_id": run_id, "rerun_all_failed_tasks": True})

    running = api.get("jobs/runs/get", run_id=run_id)[1]["state"]["life_cycle_state"]
    sim.advance(61)
    finished = api.get("jobs/runs/get", run_id=run_id)[1]["state"]

    assert running == "RUNNING"
    assert (finished["life_cycle_state"], finished["result_state"]) == ("TERMINATED", "SUCCESS")


def test_finish_runs_ends_every_running_rerun_at_once(sim, api):
    sim.rerun_seconds = 3600
    run_id = sim.fail_run(pipeline(sim), {"transform": FAILURE})
    api.post("jobs/runs/repair", {"run_id": run_id, "rerun_all_failed_tasks": True})

    sim.finish_runs()

    assert api.get("jobs/runs/get", run_id=run_id)[1]["state"]["result_state"] == "SUCCESS"


def test_a_second_repair_needs_the_latest_repair_id(sim, api):
    run_id = sim.fail_run(pipeline(sim), {"transform": FAILURE})
    sim.script_repair(run_id, FAILURE)
    _, first = api.post("jobs/runs/repair", {"run_id": run_id, "rerun_all_failed_tasks": True})

    refused = api.post("jobs/runs/repair", {"run_id": run_id, "rerun_all_failed_tasks": True})
    accepted = api.post("jobs/runs/repair", {"run_id": run_id, "rerun_all_failed_tasks": True,
                                             "latest_repair_id": first["repair_id"]})

    assert refused == (400, {"error_code": "INVALID_PARAMETER_VALUE",
                             "message": "The latest repair ID needs to be provided in order to create a new repair"})
    assert accepted[0] == 200


def test_a_scripted_failure_makes_the_repair_fail_again_with_that_error(sim, api):
    run_id = sim.fail_run(pipeline(sim), {"transform": FAILURE})
    again = TaskFailure(error="SocketTimeoutException: Read timed out")
    sim.script_repair(run_id, again)

    api.post("jobs/runs/repair", {"run_id": run_id, "rerun_all_failed_tasks": True})
    _, run = api.get("jobs/runs/get", run_id=run_id)

    assert run["state"]["result_state"] == "FAILED"
    assert api.get("jobs/runs/get-output", run_id=run["tasks"][3]["run_id"])[1]["error"] == again.error


def test_a_repair_reruns_on_the_job_cluster_as_jobs_update_left_it(sim, api):
    job_id = pipeline(sim)
    run_id = sim.fail_run(job_id, {"transform": FAILURE})
    bigger = {**CLUSTER, "node_type_id": "Standard_DS4_v2", "num_workers": 4}

    api.post("jobs/update", {"job_id": job_id, "new_settings": {"job_clusters": [
        {"job_cluster_key": "etl", "new_cluster": bigger}]}})
    api.post("jobs/runs/repair", {"run_id": run_id, "rerun_all_failed_tasks": True})
    _, run = api.get("jobs/runs/get", run_id=run_id)

    old, new = run["tasks"][1], run["tasks"][3]
    assert sim.cluster(old["cluster_instance"]["cluster_id"])["node_type_id"] == "Standard_DS3_v2"
    assert sim.cluster(new["cluster_instance"]["cluster_id"])["node_type_id"] == "Standard_DS4_v2"
    assert run["job_clusters"][0]["new_cluster"] == bigger


def test_succeed_if_resized_fails_the_same_size_and_passes_a_bigger_one(sim, api):
    job_id = pipeline(sim)
    run_id = sim.fail_run(job_id, {"transform": FAILURE})
    sim.script_repair(run_id, succeed_if_resized(FAILURE), times=2)

    api.post("jobs/runs/repair", {"run_id": run_id, "rerun_all_failed_tasks": True})
    same_size = sim.run(run_id)["state"]["result_state"]
    api.post("jobs/update", {"job_id": job_id, "new_settings": {"job_clusters": [
        {"job_cluster_key": "etl", "new_cluster": {**CLUSTER, "num_workers": 4}}]}})
    api.post("jobs/runs/repair", {"run_id": run_id, "rerun_all_failed_tasks": True,
                                  "latest_repair_id": sim.run(run_id)["repair_history"][-1]["id"]})

    assert (same_size, sim.run(run_id)["state"]["result_state"]) == ("FAILED", "SUCCESS")


def test_repair_job_parameters_replace_the_runs_values(sim, api):
    job_id = pipeline(sim, parameters=[{"name": "run_date", "default": "2024-01-01"}])
    run_id = sim.fail_run(job_id, {"transform": FAILURE}, job_parameters={"run_date": "2024-06-10"})

    api.post("jobs/runs/repair", {"run_id": run_id, "rerun_all_failed_tasks": True,
                                  "job_parameters": {"run_date": "2024-06-11"}})

    assert sim.run(run_id)["job_parameters"] == [{"name": "run_date", "default": "2024-01-01", "value": "2024-06-11"}]


# --- Jobs, run-now, submit, cancel -----------------------------------------------------------------------


def test_jobs_update_merges_job_clusters_by_key_and_replaces_top_level_fields(sim, api):
    job_id = sim.add_job("j", [{"task_key": "t", "job_cluster_key": "a", "notebook_task": {"notebook_path": "/t"}}],
                         job_clusters=[{"job_cluster_key": "a", "new_cluster": CLUSTER},
                                       {"job_cluster_key": "b", "new_cluster": CLUSTER}], tags={"x": "1"})

    api.post("jobs/update", {"job_id": job_id, "new_settings": {
        "job_clusters": [{"job_cluster_key": "b", "new_cluster": {**CLUSTER, "num_workers": 8}}], "tags": {"y": "2"}}})
    settings = api.get("jobs/get", job_id=job_id)[1]["settings"]

    assert [(c["job_cluster_key"], c["new_cluster"]["num_workers"]) for c in settings["job_clusters"]] == [
        ("a", 2), ("b", 8)]
    assert settings["tags"] == {"y": "2"}
    assert len(settings["tasks"]) == 1


def test_run_now_with_a_known_idempotency_token_returns_the_existing_run(sim, api):
    job_id = pipeline(sim)

    first = api.post("jobs/run-now", {"job_id": job_id, "idempotency_token": "tok-1"})[1]
    again = api.post("jobs/run-now", {"job_id": job_id, "idempotency_token": "tok-1"})[1]

    assert first == again
    assert len(sim.workspace.runs) == 1


def test_run_now_of_a_scripted_job_fails_as_scripted(sim, api):
    job_id = pipeline(sim)
    sim.script_repair(job_id, {"load": FAILURE})

    run_id = api.post("jobs/run-now", {"job_id": job_id, "idempotency_token": "tok-2"})[1]["run_id"]

    assert [t["state"]["result_state"] for t in sim.run(run_id)["tasks"]] == ["SUCCESS", "SUCCESS", "FAILED"]


def test_runs_submit_refuses_job_cluster_keys(api):
    status, body = api.post("jobs/runs/submit", {"run_name": "x", "tasks": [
        {"task_key": "t", "job_cluster_key": "etl", "notebook_task": {"notebook_path": "/t"}}]})

    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


def test_runs_submit_runs_each_task_on_its_own_new_cluster(sim, api):
    status, body = api.post("jobs/runs/submit", {"run_name": "resized rerun", "tasks": [
        {"task_key": "t", "new_cluster": CLUSTER, "notebook_task": {"notebook_path": "/t"}}]})

    run = sim.run(body["run_id"])
    assert status == 200 and run["run_type"] == "SUBMIT_RUN" and "job_id" not in run
    assert sim.cluster(run["tasks"][0]["cluster_instance"]["cluster_id"])["num_workers"] == 2


def test_cancel_ends_a_running_run_as_user_canceled(sim, api):
    sim.rerun_seconds = 3600
    run_id = api.post("jobs/run-now", {"job_id": pipeline(sim)})[1]["run_id"]

    api.post("jobs/runs/cancel", {"run_id": run_id})

    assert sim.run(run_id)["status"]["termination_details"]["code"] == "USER_CANCELED"


def test_reset_empties_the_workspace(sim, api):
    sim.fail_run(pipeline(sim), {"transform": FAILURE})

    sim.reset()

    assert api.get("jobs/runs/list") == (200, {"has_more": False})
    assert sim.requests[-1].path.endswith("/runs/list")
    assert len(sim.requests) == 1


# --- Webhooks, demo, command line ------------------------------------------------------------------------


def test_a_failed_run_of_a_job_with_a_failure_webhook_posts_the_documented_payload(sim):
    received: list[tuple[dict, str | None]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append((json.loads(self.rfile.read(int(self.headers["Content-Length"]))),
                             self.headers.get("Authorization")))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        sim.send_webhooks_to(f"http://127.0.0.1:{server.server_address[1]}/api/webhook", username="u", password="p")
        job_id = pipeline(sim, webhook_notifications={"on_failure": [{"id": "dest-1"}]})
        run_id = sim.fail_run(job_id, {"transform": FAILURE})
        sim.flush_webhooks()
    finally:
        server.shutdown()
        server.server_close()

    assert received == [({"event_type": "jobs.on_failure", "workspace_id": sim.workspace_id,
                          "run": {"run_id": str(run_id)}, "job": {"job_id": str(job_id), "name": "nightly_sales_etl"}},
                         "Basic dTpw")]
    assert sim.webhook_deliveries[0]["status"] == 202


def test_the_demo_workspace_has_ten_failed_or_cancelled_runs_of_distinct_jobs(sim):
    scenarios = load_demo_workspace(sim)

    runs = {name: sim.run(run_id) for name, (_, run_id) in scenarios.items()}

    assert len(scenarios) == 10 and len({job for job, _ in scenarios.values()}) == 10
    assert {name: run["state"]["result_state"] for name, run in runs.items()} == {
        name: "CANCELED" if name == "user_cancelled" else "FAILED" for name in scenarios}
    for job_id, _ in scenarios.values():
        assert sim.job(job_id)["settings"]["email_notifications"]["on_failure"]
    assert sim.job(scenarios["agent_off"][0])["settings"]["tags"]["ai_agent"] == "off"
    assert "environment_key" in runs["oom_serverless"]["tasks"][0]
    assert [t["state"]["result_state"] for t in runs["multi_task_upstream"]["tasks"]].count("UPSTREAM_FAILED") == 2


def test_the_demo_oom_run_succeeds_only_after_a_resize(sim, api):
    job_id, run_id = load_demo_workspace(sim)["oom_job_cluster"]
    api.post("jobs/runs/repair", {"run_id": run_id, "rerun_all_failed_tasks": True})
    assert sim.run(run_id)["state"]["result_state"] == "FAILED"
    cluster = sim.job(job_id)["settings"]["job_clusters"][0]["new_cluster"]

    api.post("jobs/update", {"job_id": job_id, "new_settings": {"job_clusters": [
        {"job_cluster_key": "etl_cluster", "new_cluster": {**cluster, "node_type_id": "Standard_DS4_v2"}}]}})
    api.post("jobs/runs/repair", {"run_id": run_id, "rerun_all_failed_tasks": True,
                                  "latest_repair_id": sim.run(run_id)["repair_history"][-1]["id"]})

    assert sim.run(run_id)["state"]["result_state"] == "SUCCESS"


def test_the_command_line_serves_the_demo_workspace():
    process = subprocess.Popen(
        [sys.executable, "-m", "localdev.databricks_sim", "--port", "0", "--token", "dapi-cli"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        started = json.loads(process.stdout.readline())
        answer = requests.get(f"{started['url']}/api/2.2/jobs/runs/list", timeout=5,
                              headers={"Authorization": "Bearer dapi-cli"})
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert len(started["scenarios"]) == 10
    assert len(answer.json()["runs"]) == 10
