"""DatabricksClient against the workspace simulator over loopback: retries, errors, pagination, the write calls."""

from __future__ import annotations

import logging
import time

import pytest

from localdev.databricks_sim import ClusterReason, DatabricksSimulator, TaskFailure
from localdev.ports import free_port
from shared.databricks import errors
from shared.databricks.auth import EntraToken, PatToken
from shared.databricks.client import DatabricksClient, RetryPolicy, build_jobs_api
from shared.exceptions import PermanentError, TransientError
from shared.settings import WorkspaceConfig
from tests.fixtures.databricks import SIM_TOKEN, TEST_RETRY

CLUSTER = {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_DS3_v2", "num_workers": 2}
OOM = TaskFailure(error="java.lang.OutOfMemoryError: Java heap space", error_trace="at java.util.Arrays.copyOf")


def etl_job(sim: DatabricksSimulator, tasks: int = 2, **settings) -> int:
    """A chain of notebook tasks t0 -> t1 -> ... on one job cluster, plus a second, untouched cluster."""
    return sim.add_job(
        "nightly_sales_etl",
        [{"task_key": f"t{i}", "job_cluster_key": "etl", "notebook_task": {"notebook_path": f"/etl/t{i}"},
          **({"depends_on": [{"task_key": f"t{i - 1}"}]} if i else {})} for i in range(tasks)],
        job_clusters=[{"job_cluster_key": "etl", "new_cluster": dict(CLUSTER)},
                      {"job_cluster_key": "reporting", "new_cluster": dict(CLUSTER)}],
        parameters=[{"name": "run_date", "default": "2024-06-01"}],
        **settings,
    )


def failed_run(sim: DatabricksSimulator, tasks: int = 2, **failure) -> int:
    return sim.fail_run(etl_job(sim, tasks), {"t0": TaskFailure(**{"error": "boom", **failure})})


# --- Reading ---------------------------------------------------------------------------------------------


def test_get_run_merges_every_page_of_tasks_and_history(sim, jobs_api):
    sim.page_size = 2
    run_id = failed_run(sim, tasks=5)
    sim.script_repair(run_id, TaskFailure(error="boom again"))
    first = jobs_api.repair_run(run_id, latest_repair_id=None)
    second = jobs_api.repair_run(run_id, latest_repair_id=first)

    run = jobs_api.get_run(run_id)

    # Attempts accumulate: the original five task runs, then t0 and its four downstream tasks twice.
    assert len(run.tasks) == 15
    assert len({t.run_id for t in run.tasks}) == 15
    assert [item.type for item in run.repair_history] == ["ORIGINAL", "REPAIR", "REPAIR"]
    assert run.latest_repair_id == second
    assert run.state.result_state == "SUCCESS"
    assert len(sim.requests_to("/runs/get")) == 8  # 15 tasks at 2 a page


def test_get_run_with_more_tasks_than_a_page_follows_next_page_token(sim, jobs_api):
    sim.page_size = 2
    run_id = failed_run(sim, tasks=5)

    run = jobs_api.get_run(run_id)

    tokens = [r.query.get("page_token") for r in sim.requests_to("/runs/get")]
    assert tokens[0] is None and all(tokens[1:]) and len(tokens) == 3
    assert [t.task_key for t in run.tasks] == ["t0", "t1", "t2", "t3", "t4"]
    assert len(run.job_clusters) == 2 and run.job_parameters[0].name == "run_date"


def test_get_run_output_of_a_failed_task_has_the_error_and_trace(sim, jobs_api):
    run = jobs_api.get_run(sim.fail_run(etl_job(sim), {"t0": OOM}))

    output = jobs_api.get_run_output(run.failed_tasks()[0].run_id)

    assert output.error == OOM.error
    assert output.error_trace == OOM.error_trace


def test_get_run_output_of_a_multi_task_parent_is_a_permanent_invalid_parameter(sim, jobs_api):
    run_id = failed_run(sim)

    with pytest.raises(errors.InvalidParameterValue, match="multiple tasks is not supported") as raised:
        jobs_api.get_run_output(run_id)

    assert isinstance(raised.value, PermanentError)


def test_a_run_that_does_not_exist_is_resource_does_not_exist(sim, jobs_api):
    with pytest.raises(errors.ResourceDoesNotExist):
        jobs_api.get_run(999)


def test_get_cluster_reports_the_termination_reason(sim, jobs_api):
    reason = ClusterReason("DRIVER_UNREACHABLE", "SERVICE_FAULT", {"databricks_error_message": "driver lost"})
    run = jobs_api.get_run(failed_run(sim, cluster_reason=reason, termination_code="CLUSTER_ERROR"))

    cluster = jobs_api.get_cluster(run.failed_tasks()[0].cluster_instance.cluster_id)

    assert cluster.state == "TERMINATED"
    assert (cluster.termination_reason.code, cluster.termination_reason.type) == ("DRIVER_UNREACHABLE", "SERVICE_FAULT")
    assert cluster.termination_reason.parameters == {"databricks_error_message": "driver lost"}


def test_get_job_reads_tags_notifications_and_job_clusters(sim, jobs_api):
    sim.page_size = 1
    job_id = etl_job(sim, tags={"ai_agent": "off"}, email_notifications={"on_failure": ["owner@contoso.example"]})

    job = jobs_api.get_job(job_id)

    assert job.settings.tags == {"ai_agent": "off"}
    assert job.settings.email_notifications["on_failure"] == ["owner@contoso.example"]
    assert [c["job_cluster_key"] for c in job.settings.job_clusters] == ["etl", "reporting"]


def test_list_runs_yields_every_page_newest_first_within_the_window(sim, jobs_api):
    job_id = etl_job(sim)
    since = sim.workspace.now_ms()
    run_ids = []
    for _ in range(30):
        sim.advance(1)
        run_ids.append(sim.succeed_run(job_id, duration_s=0))

    listed = [r.run_id for r in jobs_api.list_runs(start_time_from=since)]

    assert listed == list(reversed(run_ids))
    assert [r.query["limit"] for r in sim.requests_to("/runs/list")] == ["25", "25"]


def test_list_runs_leaves_out_runs_still_in_progress(sim, jobs_api):
    sim.rerun_seconds = 3600
    job_id = etl_job(sim)
    since = sim.workspace.now_ms() - 1
    done = sim.succeed_run(job_id, duration_s=0)
    jobs_api.run_now(job_id, idempotency_token="still-running")

    assert [r.run_id for r in jobs_api.list_runs(start_time_from=since)] == [done]


# --- Writing ---------------------------------------------------------------------------------------------


def test_the_first_repair_reruns_all_failed_tasks_with_the_job_parameters(sim, jobs_api):
    run_id = failed_run(sim)

    jobs_api.repair_run(run_id, latest_repair_id=None, job_parameters={"run_date": "2024-06-11"})

    (request,) = sim.requests_to("/runs/repair")
    assert request.body == {"run_id": run_id, "rerun_all_failed_tasks": True,
                            "job_parameters": {"run_date": "2024-06-11"}}


def test_the_second_repair_sends_the_latest_repair_id(sim, jobs_api):
    run_id = failed_run(sim)
    sim.script_repair(run_id, TaskFailure(error="boom again"))
    first = jobs_api.repair_run(run_id, latest_repair_id=None)
    run = jobs_api.get_run(run_id)

    second = jobs_api.repair_run(run_id, latest_repair_id=run.latest_repair_id)

    assert run.latest_repair_id == first
    assert sim.requests_to("/runs/repair")[-1].body["latest_repair_id"] == first
    assert jobs_api.get_run(run_id).latest_repair_id == second


def test_a_second_repair_without_the_latest_repair_id_is_refused(sim, jobs_api):
    run_id = failed_run(sim)
    sim.script_repair(run_id, TaskFailure(error="boom again"))
    jobs_api.repair_run(run_id, latest_repair_id=None)

    with pytest.raises(errors.InvalidParameterValue, match="latest repair ID needs to be provided"):
        jobs_api.repair_run(run_id, latest_repair_id=None)


def test_repairing_a_run_in_progress_is_invalid_state(sim, jobs_api):
    sim.rerun_seconds = 3600
    run_id = failed_run(sim)
    jobs_api.repair_run(run_id, latest_repair_id=None)

    with pytest.raises(errors.InvalidState) as raised:
        jobs_api.repair_run(run_id, latest_repair_id=jobs_api.get_run(run_id).latest_repair_id)

    assert raised.value.error_code == "INVALID_STATE"  # what shared/actions.py looks for


def test_run_now_with_the_same_idempotency_token_returns_the_same_run(sim, jobs_api):
    job_id = etl_job(sim)

    first = jobs_api.run_now(job_id, idempotency_token="ai-agent-abc", job_parameters={"run_date": "2024-06-11"})
    again = jobs_api.run_now(job_id, idempotency_token="ai-agent-abc")
    other = jobs_api.run_now(job_id, idempotency_token="ai-agent-def")

    assert first == again != other
    assert sim.requests_to("/run-now")[0].body["job_parameters"] == {"run_date": "2024-06-11"}


def test_run_now_refuses_a_token_longer_than_64_characters_before_calling(sim, jobs_api):
    with pytest.raises(ValueError, match="64"):
        jobs_api.run_now(1, idempotency_token="x" * 65)

    assert sim.requests == []


def test_update_job_cluster_changes_one_job_cluster_and_keeps_the_others(sim, jobs_api):
    job_id = etl_job(sim)
    bigger = {**CLUSTER, "node_type_id": "Standard_DS4_v2", "num_workers": 4}

    jobs_api.update_job_cluster(job_id, "etl", bigger)

    (request,) = sim.requests_to("/jobs/update")
    assert request.body == {"job_id": job_id, "new_settings": {"job_clusters": [
        {"job_cluster_key": "etl", "new_cluster": bigger}]}}
    job = jobs_api.get_job(job_id)
    assert job.job_cluster("etl") == bigger
    assert job.job_cluster("reporting") == CLUSTER
    assert len(job.settings.tasks) == 2


def test_a_repair_after_update_job_cluster_reruns_on_the_new_cluster(sim, jobs_api):
    run_id = failed_run(sim)
    jobs_api.update_job_cluster(sim.run(run_id)["job_id"], "etl", {**CLUSTER, "node_type_id": "Standard_DS4_v2"})

    jobs_api.repair_run(run_id, latest_repair_id=None)

    rerun = jobs_api.get_run(run_id).tasks[-1]
    assert jobs_api.get_cluster(rerun.cluster_instance.cluster_id).model_extra["node_type_id"] == "Standard_DS4_v2"


def test_cancel_run_cancels_a_run_in_progress(sim, jobs_api):
    sim.rerun_seconds = 3600
    run_id = jobs_api.run_now(etl_job(sim), idempotency_token="t")

    jobs_api.cancel_run(run_id)

    run = jobs_api.get_run(run_id)
    assert (run.state.result_state, run.termination.code) == ("CANCELED", "USER_CANCELED")


# --- Retries ---------------------------------------------------------------------------------------------


def test_a_429_waits_for_retry_after_then_succeeds(sim, jobs_api, recorded_sleeps):
    run_id = failed_run(sim)
    sim.throttle(times=2, retry_after=3)

    run = jobs_api.get_run(run_id)

    assert run.run_id == run_id
    assert recorded_sleeps == [3.0, 3.0]
    assert len(sim.requests_to("/runs/get")) == 3


def test_a_429_without_retry_after_waits_one_second(sim, jobs_api, recorded_sleeps):
    run_id = failed_run(sim)
    sim.throttle(times=1, retry_after=None)

    jobs_api.get_run(run_id)

    assert recorded_sleeps == [1.0]


def test_a_503_is_retried_with_backoff(sim, jobs_api, recorded_sleeps):
    run_id = failed_run(sim)
    sim.fail_with(503, times=3)

    jobs_api.get_run(run_id)

    # At least the 1 s default, then growing: max(1, 0.5), max(1, 1), max(1, 2) s, plus up to 0.1 s of jitter.
    assert [int(w * 10) for w in recorded_sleeps] == [10, 10, 20]


def test_a_502_on_a_read_is_retried_with_growing_backoff(sim, jobs_api, recorded_sleeps):
    run_id = failed_run(sim)
    sim.fail_with(502, times=3)

    jobs_api.get_run(run_id)

    # 0.5, 1, 2 s (the policy's cap), each plus up to 0.1 s of jitter
    assert [int(w * 10) for w in recorded_sleeps] == [5, 10, 20]


def test_a_retry_after_over_the_cap_raises_too_many_requests_at_once(sim, recorded_sleeps):
    policy = RetryPolicy(max_retry_after=30.0, budget=3600.0)  # the budget alone would allow the wait
    client = DatabricksClient(sim.url, PatToken(SIM_TOKEN), retry=policy, sleep=recorded_sleeps.append)
    sim.throttle(times=1, retry_after=600)
    started = time.monotonic()

    with pytest.raises(errors.TooManyRequests) as raised:
        client.get_run(1)

    assert time.monotonic() - started < 2
    assert recorded_sleeps == []
    assert raised.value.retry_after == 600
    assert isinstance(raised.value, TransientError)


def test_when_retries_run_out_the_last_error_is_raised_as_transient(sim, jobs_api):
    sim.fail_with(503, times=10)

    with pytest.raises(errors.TemporarilyUnavailable):
        jobs_api.get_run(1)

    assert len(sim.requests_to("/runs/get")) == 1 + TEST_RETRY.retries


def test_the_total_wait_of_one_call_is_capped(sim, recorded_sleeps):
    client = DatabricksClient(sim.url, PatToken(SIM_TOKEN), retry=RetryPolicy(retries=10, budget=5.0),
                              sleep=recorded_sleeps.append)
    sim.throttle(times=10, retry_after=2)

    with pytest.raises(errors.TooManyRequests):
        client.get_run(1)

    assert recorded_sleeps == [2.0, 2.0]


def test_a_repair_is_not_repeated_after_an_ambiguous_502(sim, jobs_api):
    run_id = failed_run(sim)
    sim.fail_with(502, times=1, path="/runs/repair")

    with pytest.raises(errors.BadGateway) as raised:
        jobs_api.repair_run(run_id, latest_repair_id=None)

    assert isinstance(raised.value, TransientError)
    assert len(sim.requests_to("/runs/repair")) == 1


def test_a_repair_is_not_repeated_after_a_read_timeout_because_it_may_have_happened(sim):
    client = DatabricksClient(sim.url, PatToken(SIM_TOKEN), timeout=0.2, retry=TEST_RETRY, sleep=lambda s: None)
    run_id = failed_run(sim)
    sim.stall(0.4, path="/runs/repair")

    with pytest.raises(errors.DatabricksTimeout) as raised:
        client.repair_run(run_id, latest_repair_id=None)

    assert isinstance(raised.value, TransientError)
    assert len(sim.requests_to("/runs/repair")) == 1
    # ...and the server did repair the run after the client stopped waiting: the ambiguity is real.
    deadline = time.monotonic() + 3
    while len(sim.run(run_id)["repair_history"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sim.run(run_id)["repair_history"][-1]["type"] == "REPAIR"


def test_a_repair_refused_with_429_is_retried(sim, jobs_api, recorded_sleeps):
    run_id = failed_run(sim)
    sim.throttle(times=1, retry_after=0, path="/runs/repair")

    jobs_api.repair_run(run_id, latest_repair_id=None)

    assert len(sim.requests_to("/runs/repair")) == 2
    assert len(sim.run(run_id)["repair_history"]) == 2


def test_run_now_is_retried_after_a_502_because_its_token_makes_it_safe(sim, jobs_api):
    job_id = etl_job(sim)
    sim.fail_with(502, times=1, path="/run-now")

    run_id = jobs_api.run_now(job_id, idempotency_token="ai-agent-1")

    assert len(sim.requests_to("/run-now")) == 2
    assert sim.run(run_id)["job_id"] == job_id


def test_an_unreachable_workspace_is_a_transient_connection_error(recorded_sleeps):
    client = DatabricksClient(f"http://127.0.0.1:{free_port()}", PatToken(SIM_TOKEN), retry=TEST_RETRY,
                              sleep=recorded_sleeps.append)

    with pytest.raises(errors.DatabricksConnectionError) as raised:
        client.get_run(1)

    assert isinstance(raised.value, TransientError)
    assert len(recorded_sleeps) == TEST_RETRY.retries


# --- Auth ------------------------------------------------------------------------------------------------


def test_a_wrong_token_is_permission_denied(sim):
    client = DatabricksClient(sim.url, PatToken("dapi-wrong"), retry=TEST_RETRY)

    with pytest.raises(errors.PermissionDenied, match="Invalid access token"):
        client.get_job(1)


def test_no_credential_is_unauthenticated(sim):
    class NoToken:
        def authorization(self) -> str:
            return ""

    with pytest.raises(errors.Unauthenticated):
        DatabricksClient(sim.url, NoToken(), retry=TEST_RETRY).get_job(1)


def test_the_token_never_reaches_the_logs_or_the_repr(sim, jobs_api, caplog):
    caplog.set_level(logging.DEBUG)
    sim.throttle(times=1, retry_after=0)
    sim.fail_with(403, error_code="PERMISSION_DENIED", message="no", path="/jobs/get")

    list(jobs_api.list_runs(start_time_from=0))
    with pytest.raises(errors.PermissionDenied) as raised:
        jobs_api.get_job(1)

    assert "retrying GET /api/2.2/jobs/runs/list" in caplog.text
    assert SIM_TOKEN not in caplog.text
    assert SIM_TOKEN not in repr(jobs_api)
    assert SIM_TOKEN not in str(raised.value)


def test_build_jobs_api_uses_the_pat_given_for_the_workspace(sim):
    workspace = WorkspaceConfig(url=sim.url + "/", auth="pat", pat_secret_name="databricks-pat")

    client = build_jobs_api(workspace, timeout=5.0, pat_token=SIM_TOKEN)

    assert client.host == sim.url
    assert list(client.list_runs(start_time_from=0)) == []


def test_build_jobs_api_with_entra_auth_creates_no_credential_until_the_first_call():
    workspace = WorkspaceConfig(url="https://adb-1.1.azuredatabricks.net", auth="entra")

    client = build_jobs_api(workspace, timeout=5.0, azure_client_id="11111111-2222-3333-4444-555555555555")

    assert isinstance(client._auth, EntraToken) and client._auth._credential is None  # noqa: SLF001


def test_entra_tokens_are_sent_as_bearer_tokens(sim):
    class Credential:
        def get_token(self, scope: str):
            return type("AccessToken", (), {"token": "eyJ.entra", "expires_on": time.time() + 3600})()

    sim.allow_token("eyJ.entra")
    client = DatabricksClient(sim.url, EntraToken(Credential()), retry=TEST_RETRY)

    assert list(client.list_runs(start_time_from=0)) == []


# --- Retryable refusals (databricks-sdk-py _is_retryable; Airflow provider _retryable_error) ----------------


def test_a_400_could_not_acquire_lock_on_a_read_is_retried_then_succeeds(sim, jobs_api, recorded_sleeps):
    run_id = failed_run(sim)
    sim.fail_with(400, times=2, error_code="COULD_NOT_ACQUIRE_LOCK", message="Could not acquire lock", path="/runs/get")

    run = jobs_api.get_run(run_id)

    assert run.run_id == run_id
    assert len(sim.requests_to("/runs/get")) == 3
    assert [int(w) for w in recorded_sleeps] == [1, 2]  # min(10, attempt) s plus jitter, as the SDK waits


def test_run_now_refused_with_try_again_later_is_retried_its_token_makes_it_safe(sim, jobs_api, recorded_sleeps):
    job_id = etl_job(sim)
    sim.fail_with(400, times=1, error_code="INVALID_STATE",
                  message="Please try again later or try a faster operation.", path="/run-now")

    run_id = jobs_api.run_now(job_id, idempotency_token="agent-test-token")

    assert run_id and len(sim.requests_to("/run-now")) == 2


def test_jobs_update_refused_for_now_is_not_resent_but_raised_as_transient(sim, jobs_api):
    job_id = etl_job(sim)
    sim.fail_with(400, times=1, error_code="COULD_NOT_ACQUIRE_LOCK", message="lock held", path="/jobs/update")

    with pytest.raises(errors.RetryableRefusal):
        jobs_api.update_job_cluster(job_id, "etl", {**CLUSTER, "num_workers": 4})

    assert len(sim.requests_to("/jobs/update")) == 1  # the caller reads the job back before anything else


def test_a_repair_refused_with_a_lock_is_not_resent_but_raised_as_transient(sim, jobs_api):
    run_id = failed_run(sim)
    sim.fail_with(400, times=1, error_code="COULD_NOT_ACQUIRE_LOCK", message="lock held", path="/runs/repair")

    with pytest.raises(errors.RetryableRefusal) as raised:
        jobs_api.repair_run(run_id, latest_repair_id=None)

    assert isinstance(raised.value, TransientError) and not isinstance(raised.value, PermanentError)
    assert len(sim.requests_to("/runs/repair")) == 1  # the caller re-reads the run before anything else


def test_a_retryable_refusal_that_lasts_raises_transient_after_the_policy(sim, jobs_api):
    sim.fail_with(400, times=20, error_code="COULD_NOT_ACQUIRE_LOCK", message="lock held", path="/runs/get")

    with pytest.raises(errors.RetryableRefusal):
        jobs_api.get_run(1)

    assert len(sim.requests_to("/runs/get")) == 1 + TEST_RETRY.retries


def test_a_repair_sends_the_legacy_parameters_the_run_was_started_with(sim, jobs_api):
    run_id = failed_run(sim)

    jobs_api.repair_run(run_id, latest_repair_id=None, notebook_params={"day": "2024-06-01"},
                        python_params=["--full"])

    body = sim.requests_to("/runs/repair")[0].body
    assert body["notebook_params"] == {"day": "2024-06-01"} and body["python_params"] == ["--full"]
    assert "job_parameters" not in body and body["rerun_all_failed_tasks"] is True


def test_an_unknown_parameter_kind_is_refused_before_calling(sim, jobs_api):
    with pytest.raises(ValueError, match="not a run parameter kind"):
        jobs_api.repair_run(1, latest_repair_id=None, notebok_params={"a": "1"})

    assert sim.requests_to("/runs/repair") == []
