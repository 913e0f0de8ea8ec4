"""The simulator's latency knob: every API answer late by the set delay, concurrent requests overlapping."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from localdev.databricks_sim import DatabricksSimulator, TaskFailure
from tests.fixtures.databricks import SIM_TOKEN

AUTH = {"Authorization": f"Bearer {SIM_TOKEN}"}


def _failed_run(sim: DatabricksSimulator) -> int:
    job = sim.add_job("etl", [{"task_key": "t", "notebook_task": {"notebook_path": "/t"}}])
    return sim.fail_run(job, {"t": TaskFailure(error="boom")})


def _timed_get(sim: DatabricksSimulator, run_id: int, headers=AUTH) -> tuple[float, int]:
    started = time.monotonic()
    answer = requests.get(f"{sim.url}/api/2.2/jobs/runs/get", params={"run_id": run_id}, headers=headers, timeout=10)
    return time.monotonic() - started, answer.status_code


def test_every_answer_is_late_by_the_latency_and_zero_ends_it(sim):
    run_id = _failed_run(sim)
    baseline, _ = _timed_get(sim, run_id)
    sim.set_latency(0.3)
    late, status = _timed_get(sim, run_id)
    refused, refused_status = _timed_get(sim, run_id, headers={"Authorization": "Bearer wrong"})
    sim.set_latency(0)
    again, _ = _timed_get(sim, run_id)
    assert status == 200 and refused_status == 403
    assert late >= 0.3 and refused >= 0.3  # refusals are late too, as behind a distant gateway
    assert baseline < 0.25 and again < 0.25


def test_latency_only_on_the_paths_named(sim):
    run_id = _failed_run(sim)
    sim.set_latency(0.3, path="runs/get-output")
    fast, _ = _timed_get(sim, run_id)
    started = time.monotonic()
    requests.get(f"{sim.url}/api/2.2/jobs/runs/get-output", params={"run_id": run_id}, headers=AUTH, timeout=10)
    assert fast < 0.25 and time.monotonic() - started >= 0.3


def test_concurrent_requests_overlap_rather_than_queue(sim):
    """The delay is spent outside the workspace lock: 8 requests at once take about one latency, not eight."""
    run_id = _failed_run(sim)
    sim.set_latency(0.4)
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: _timed_get(sim, run_id), range(8)))
    elapsed = time.monotonic() - started
    assert all(status == 200 and took >= 0.4 for took, status in answers)
    assert elapsed < 1.2, elapsed
    assert sim.request_count("jobs/runs/get", "GET") == 8


def test_reset_removes_the_latency_and_bad_values_are_refused(sim):
    sim.set_latency(0.5)
    sim.reset()
    assert sim.latency_for("/api/2.2/jobs/runs/get") == 0.0
    with pytest.raises(ValueError):
        sim.set_latency(-1)


def test_admin_route_sets_the_latency_and_is_never_delayed(sim):
    run_id = _failed_run(sim)
    answer = requests.post(f"{sim.url}/sim/latency", json={"seconds": 0.3}, headers=AUTH, timeout=5)
    assert answer.status_code == 200 and answer.json() == {"seconds": 0.3, "path": None}
    started = time.monotonic()
    requests.get(f"{sim.url}/sim/stats", headers=AUTH, timeout=5)
    assert time.monotonic() - started < 0.25
    late, _ = _timed_get(sim, run_id)
    assert late >= 0.3
    bad = requests.post(f"{sim.url}/sim/latency", json={"seconds": "soon"}, headers=AUTH, timeout=5)
    assert bad.status_code == 400
