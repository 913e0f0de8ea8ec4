"""A busy workspace: 30,000 runs in the poll window, paged by runs/list as the Jobs API pages them."""

from __future__ import annotations

import time

import requests

from localdev.databricks_sim import TaskFailure
from localdev.databricks_sim.listing import list_runs
from tests.fixtures.databricks import SIM_TOKEN

AUTH = {"Authorization": f"Bearer {SIM_TOKEN}"}


def page(sim, **params):
    answer = requests.get(f"{sim.url}/api/2.2/jobs/runs/list", params=params, headers=AUTH, timeout=10)
    return answer.status_code, answer.json()


def walk(sim, **params) -> list[int]:
    """Every run id, following next_page_token in-process (the same code the HTTP route runs)."""
    ids, token = [], None
    while True:
        query = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items()}
        answer = list_runs(sim.workspace.runs, sim.workspace.bulk, {**query, **({"page_token": token} if token else {})},
                           sim.url, sim.workspace_id)
        ids += [r["run_id"] for r in answer.get("runs", [])]
        if not answer["has_more"]:
            return ids
        token = answer["next_page_token"]


def test_thirty_thousand_runs_are_created_cheaply_and_every_one_is_listed_once_newest_first(sim):
    started = time.perf_counter()
    created = sim.add_busy_runs(30_000)
    elapsed = time.perf_counter() - started
    job = sim.add_job("nb", [{"task_key": "t", "notebook_task": {"notebook_path": "/t"}}])
    failed = sim.fail_run(job, {"t": TaskFailure(error="boom")}, duration_s=60)

    ids = walk(sim, limit=25, completed_only=True)

    assert elapsed < 3.0
    assert len(ids) == len(set(ids)) == 30_001
    assert set(ids) == set(created) | {failed}
    starts = {r.run_id: r.start_time for r in sim.workspace.bulk.items}
    starts[failed] = sim.run(failed)["start_time"]
    assert [starts[i] for i in ids] == sorted(starts.values(), reverse=True)


def test_the_http_pages_hold_at_most_25_with_has_more_and_a_time_window(sim):
    sim.add_busy_runs(3_000, within_s=3600)
    now_ms = int(sim.workspace.now_ms())
    window = {"start_time_from": now_ms - 600_000, "start_time_to": now_ms, "completed_only": "true", "limit": 25}

    seen, token, pages = [], None, 0
    while True:
        status, answer = page(sim, **window, **({"page_token": token} if token else {}))
        assert status == 200 and len(answer.get("runs", [])) <= 25
        seen += answer.get("runs", [])
        pages += 1
        if not answer["has_more"]:
            break
        token = answer["next_page_token"]

    expected = [r for r in sim.workspace.bulk.items if window["start_time_from"] <= r.start_time <= now_ms]
    assert len(seen) == len(expected) and pages == -(-len(expected) // 25)
    assert all(window["start_time_from"] <= r["start_time"] <= now_ms for r in seen)


def test_a_run_started_between_pages_neither_shifts_nor_repeats_the_next_page(sim):
    job = sim.add_job("nb", [{"task_key": "t", "notebook_task": {"notebook_path": "/t"}}])
    sim.add_busy_runs(100, job_id=job)
    _, first = page(sim, limit=25)
    sim.advance(1)
    sim.succeed_run(job, duration_s=0)

    _, second = page(sim, limit=25, page_token=first["next_page_token"])

    first_ids = [r["run_id"] for r in first["runs"]]
    second_ids = [r["run_id"] for r in second["runs"]]
    assert not set(first_ids) & set(second_ids)
    assert second["runs"][0]["start_time"] <= first["runs"][-1]["start_time"]


def test_prev_page_token_goes_back_to_the_same_page(sim):
    sim.add_busy_runs(60)
    _, first = page(sim, limit=25)
    _, second = page(sim, limit=25, page_token=first["next_page_token"])

    _, back = page(sim, limit=25, page_token=second["prev_page_token"])

    assert "prev_page_token" not in first
    assert [r["run_id"] for r in back["runs"]] == [r["run_id"] for r in first["runs"]]


def test_limits_filters_and_runs_get_of_a_bulk_run(sim):
    ids = sim.add_busy_runs(40)
    other = sim.add_job("other", [{"task_key": "t", "notebook_task": {"notebook_path": "/t"}}])
    sim.succeed_run(other)

    assert len(page(sim)[1]["runs"]) == 20
    assert len(page(sim, limit=0)[1]["runs"]) == 25
    assert page(sim, limit=26)[0] == 400
    assert page(sim, page_token="bm9wZQ")[0] == 400
    assert [r["job_id"] for r in page(sim, job_id=other)[1]["runs"]] == [other]
    assert page(sim, active_only="true")[1] == {"has_more": False}
    assert page(sim, run_type="SUBMIT_RUN")[1] == {"has_more": False}
    assert page(sim, limit=1, expand_tasks="true", job_id=other)[1]["runs"][0]["tasks"]
    assert page(sim, limit=1, expand_tasks="true")[1]["runs"][0]["tasks"]
    answer = requests.get(f"{sim.url}/api/2.2/jobs/runs/get", params={"run_id": ids[0]}, headers=AUTH, timeout=5)
    assert (answer.status_code, answer.json()["state"]["result_state"]) == (200, "SUCCESS")
