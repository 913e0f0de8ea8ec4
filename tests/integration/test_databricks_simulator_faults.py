"""Fault injection in the simulator: what each kind answers, that lost answers still act, seeded choice."""

from __future__ import annotations

import time

import pytest
import requests

from localdev.databricks_sim import DatabricksSimulator, TaskFailure
from localdev.databricks_sim.faults import CHAOS, FaultPlan
from tests.fixtures.databricks import SIM_TOKEN

AUTH = {"Authorization": f"Bearer {SIM_TOKEN}"}
CLUSTER = {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_DS3_v2", "num_workers": 2}
FAILURE = TaskFailure(error="java.lang.OutOfMemoryError: Java heap space")


def _failed_run(sim: DatabricksSimulator) -> tuple[int, int]:
    job = sim.add_job("etl", [{"task_key": "t", "job_cluster_key": "c", "notebook_task": {"notebook_path": "/t"}}],
                      job_clusters=[{"job_cluster_key": "c", "new_cluster": dict(CLUSTER)}])
    return job, sim.fail_run(job, {"t": FAILURE})


def _get(sim, op, timeout=5.0, **params):
    return requests.get(f"{sim.url}/api/2.2/{op}", params=params, headers=AUTH, timeout=timeout)


def _post(sim, op, body, timeout=5.0):
    return requests.post(f"{sim.url}/api/2.2/{op}", json=body, headers=AUTH, timeout=timeout)


def _repairs(sim, run_id) -> int:
    return sum(1 for item in sim.run(run_id)["repair_history"] if item["type"] == "REPAIR")


@pytest.mark.parametrize(("kind", "status", "code", "retry_after"), [
    ("throttle", 429, "REQUEST_LIMIT_EXCEEDED", "3"),
    ("throttle_bare", 429, "REQUEST_LIMIT_EXCEEDED", None),
    ("error", 500, "INTERNAL_ERROR", None),
    ("unavailable", 503, "TEMPORARILY_UNAVAILABLE", "3"),
    ("lock", 400, "COULD_NOT_ACQUIRE_LOCK", None),
])
def test_each_refusal_answers_its_status_code_and_retry_after_then_serves(sim, kind, status, code, retry_after):
    sim.inject(kind, times=1, retry_after=3)

    first, second = _get(sim, "jobs/runs/list"), _get(sim, "jobs/runs/list")

    assert (first.status_code, first.json()["error_code"], first.headers.get("Retry-After")) == (
        status, code, retry_after)
    assert second.status_code == 200


@pytest.mark.parametrize(("kind", "text"), [
    ("unexpected", "Unexpected error"), ("faster", "Please try again later or try a faster operation."),
])
def test_the_sdk_retryable_400_texts_are_in_the_message(sim, kind, text):
    sim.inject(kind, times=1)

    answer = _get(sim, "jobs/runs/list")

    assert answer.status_code == 400 and text in answer.json()["message"]


def test_a_refused_repair_does_not_act(sim):
    _, run_id = _failed_run(sim)
    sim.inject("lock", path="runs/repair", times=1)

    answer = _post(sim, "jobs/runs/repair", {"run_id": run_id, "rerun_all_failed_tasks": True})

    assert answer.status_code == 400 and _repairs(sim, run_id) == 0
    assert (sim.request_count("jobs/runs/repair"), sim.applied_count("jobs/runs/repair")) == (1, 0)


def test_a_dropped_answer_after_a_repair_leaves_the_repair_done(sim):
    _, run_id = _failed_run(sim)
    sim.inject("lost_drop", path="runs/repair", times=1)

    with pytest.raises(requests.ConnectionError):
        _post(sim, "jobs/runs/repair", {"run_id": run_id, "rerun_all_failed_tasks": True})

    assert _repairs(sim, run_id) == sim.repair_count(run_id) == 1
    assert (sim.request_count("jobs/runs/repair", "POST"), sim.applied_count("jobs/runs/repair")) == (1, 1)


def test_a_500_after_jobs_update_hides_that_the_job_changed(sim):
    job, _ = _failed_run(sim)
    sim.inject("lost_500", path="jobs/update")
    bigger = {**CLUSTER, "node_type_id": "Standard_DS4_v2"}

    answer = _post(sim, "jobs/update", {"job_id": job, "new_settings": {
        "job_clusters": [{"job_cluster_key": "c", "new_cluster": bigger}]}})

    assert answer.status_code == 500
    assert sim.job(job)["settings"]["job_clusters"][0]["new_cluster"]["node_type_id"] == "Standard_DS4_v2"
    assert [u["job_clusters"][0]["new_cluster"]["node_type_id"] for u in sim.job_updates(job)] == ["Standard_DS4_v2"]


def test_a_late_answer_after_run_now_times_the_client_out_but_the_run_exists(sim):
    job, _ = _failed_run(sim)
    sim.inject("lost_stall", path="run-now", stall_s=1.0)

    with pytest.raises(requests.Timeout):
        _post(sim, "jobs/run-now", {"job_id": job}, timeout=0.3)

    assert len([r for r in _get(sim, "jobs/runs/list", job_id=job).json()["runs"]]) == 2


def test_a_stall_holds_the_request_past_the_clients_read_timeout(sim):
    sim.inject("stall", path="runs/list", times=1, stall_s=0.8)

    with pytest.raises(requests.Timeout):
        _get(sim, "jobs/runs/list", timeout=0.3)
    assert _get(sim, "jobs/runs/list").status_code == 200


def test_the_choice_is_seeded_per_endpoint_and_close_to_the_fraction():
    def hits(seed: int) -> list[int]:
        plan = FaultPlan()
        plan.add(["throttle", "error"], fraction=0.2, seed=seed)
        return [n for n in range(1000) if plan.decide("GET", "/api/2.2/jobs/runs/get", "jobs/runs/get")]

    first = hits(11)
    assert first == hits(11)
    assert first != hits(12)
    assert 150 <= len(first) <= 250


def test_times_caps_the_hits_and_path_and_method_select_the_requests(sim):
    _, run_id = _failed_run(sim)
    sim.inject("error", path="runs/get", method="GET", times=2)

    statuses = [_get(sim, "jobs/runs/get", run_id=run_id).status_code for _ in range(4)]
    other = _get(sim, "jobs/runs/list").status_code

    assert (statuses, other) == ([500, 500, 200, 200], 200)


def test_counts_are_per_endpoint_and_peak_rate_counts_a_burst(sim):
    for _ in range(5):
        _get(sim, "jobs/runs/list")
    _post(sim, "jobs/runs/cancel", {"run_id": 1})

    assert sim.request_count("jobs/runs/list") == 5
    assert sim.request_count("runs/cancel", "POST") == 1
    assert sim.request_count("jobs/get") == 0
    assert sim.peak_rate(window_s=5.0) == 6


def test_the_admin_routes_add_rules_and_report_counts_from_another_process(sim):
    rule = requests.post(f"{sim.url}/sim/faults", json={"kinds": ["lock"], "path": "runs/list", "times": 1},
                         headers=AUTH, timeout=5)
    refused, served = _get(sim, "jobs/runs/list"), _get(sim, "jobs/runs/list")
    stats = requests.get(f"{sim.url}/sim/stats", headers=AUTH, timeout=5).json()
    bad = requests.post(f"{sim.url}/sim/faults", json={"kinds": ["nonsense"]}, headers=AUTH, timeout=5)
    anonymous = requests.get(f"{sim.url}/sim/stats", timeout=5)

    assert rule.status_code == 200 and rule.json()["kinds"] == ["lock"]
    assert (refused.status_code, served.status_code) == (400, 200)
    assert stats["received"] == {"GET jobs/runs/list": 2}
    assert stats["injected"] == {"GET jobs/runs/list lock": 1}
    assert (bad.status_code, anonymous.status_code) == (400, 401)
    requests.post(f"{sim.url}/sim/faults/clear", headers=AUTH, timeout=5)
    assert sim.faults.rules == []


def test_the_command_line_takes_faults_shapes_busy_runs_and_a_service_principal():
    import json
    import subprocess
    import sys
    from pathlib import Path

    rule = json.dumps({"kinds": ["lock"], "path": "runs/list", "times": 1})
    process = subprocess.Popen(
        [sys.executable, "-m", "localdev.databricks_sim", "--port", "0", "--token", "dapi-cli", "--shapes",
         "--busy-runs", "100", "--fault", rule, "--service-principal", "sp-1:s3cret"],
        cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    headers = {"Authorization": "Bearer dapi-cli"}
    try:
        started = json.loads(process.stdout.readline())
        url = started["url"]
        refused = requests.get(f"{url}/api/2.2/jobs/runs/list", headers=headers, timeout=5)
        listed = requests.get(f"{url}/api/2.2/jobs/runs/list", params={"limit": 25}, headers=headers, timeout=5)
        token = requests.post(f"{url}/oidc/v1/token", data={"grant_type": "client_credentials", "scope": "all-apis"},
                              auth=("sp-1", "s3cret"), timeout=5)
        stats = requests.get(f"{url}/sim/stats", headers=headers, timeout=5).json()
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert len(started["scenarios"]) == 12
    assert (refused.status_code, refused.json()["error_code"]) == (400, "COULD_NOT_ACQUIRE_LOCK")
    assert listed.json()["has_more"] is True
    assert token.status_code == 200
    assert stats["received"]["GET jobs/runs/list"] == 2


def test_a_chaos_mix_over_many_repairs_never_loses_or_doubles_what_was_applied(sim):
    job = sim.add_job("etl", [{"task_key": "t", "notebook_task": {"notebook_path": "/t"}}])
    runs = [sim.fail_run(job, {"t": FAILURE}) for _ in range(60)]
    sim.inject(CHAOS, path="runs/repair", fraction=0.3, seed=5, stall_s=0.6, retry_after=0)
    answered = 0
    for run_id in runs:
        try:
            answered += _post(sim, "jobs/runs/repair", {"run_id": run_id, "rerun_all_failed_tasks": True},
                              timeout=0.3).status_code == 200
        except requests.RequestException:
            pass
    time.sleep(0.8)  # a stalled repair is applied after its client gave up

    injected = sim.faults.stats()["injected"]
    repaired = sum(sim.repair_count(r) for r in runs)
    assert 8 <= sum(injected.values()) <= 30
    assert repaired == sim.applied_count("jobs/runs/repair") >= answered
    assert repaired - answered == sum(n for k, n in injected.items() if k.split()[-1] in ("lost_drop", "lost_500",
                                                                                         "lost_stall", "stall"))


def test_a_rate_limit_answers_429_beyond_its_rate_within_a_second(sim):
    sim.limit_rate(5, path="runs/list")

    statuses = [_get(sim, "jobs/runs/list").status_code for _ in range(8)]
    other = _get(sim, "jobs/runs/get", run_id=1).status_code
    refused = _get(sim, "jobs/runs/list")

    assert statuses[:5] == [200] * 5 and set(statuses[5:]) == {429}
    assert other == 400  # other endpoints are not limited (the run does not exist)
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "1")
    time.sleep(1.05)
    assert _get(sim, "jobs/runs/list").status_code == 200


def test_chaos_by_name_and_a_rate_limit_through_the_admin_routes(sim):
    rule = requests.post(f"{sim.url}/sim/faults", json={"kinds": ["chaos"], "fraction": 0.1}, headers=AUTH, timeout=5)
    limited = requests.post(f"{sim.url}/sim/faults/rate-limit", json={"per_s": 1, "path": "jobs/get"}, headers=AUTH,
                            timeout=5)

    assert rule.json()["kinds"] == list(CHAOS)
    assert limited.status_code == 200
    sim.clear_faults()
    assert sim.faults.rules == []
