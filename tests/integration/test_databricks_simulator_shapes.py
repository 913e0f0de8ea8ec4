"""Job shapes of real workspaces in the simulator: for_each, run_job, SQL / pipeline / dbt / condition tasks,
the generic notebook failure message, and legacy task parameters on run-now and repair."""

from __future__ import annotations

import json

import pytest
import requests

from localdev.databricks_sim import DatabricksSimulator, ForEachFailure, TaskFailure
from localdev.databricks_sim.model import CODE_FAILURE_MESSAGE
from tests.fixtures.databricks import SIM_TOKEN

AUTH = {"Authorization": f"Bearer {SIM_TOKEN}"}
CLUSTER = {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_DS3_v2", "num_workers": 2}
OOM = TaskFailure(error="java.lang.OutOfMemoryError: Java heap space", error_trace="\tat java.util.Arrays")
MISSING = TaskFailure(error="[TABLE_OR_VIEW_NOT_FOUND] The table `raw.apac` cannot be found. SQLSTATE: 42P01")


def get(sim, op, **params):
    answer = requests.get(f"{sim.url}/api/2.2/{op}", params=params, headers=AUTH, timeout=5)
    return answer.status_code, answer.json()


def post(sim, op, body):
    answer = requests.post(f"{sim.url}/api/2.2/{op}", json=body, headers=AUTH, timeout=5)
    return answer.status_code, answer.json()


def for_each_job(sim: DatabricksSimulator) -> int:
    return sim.add_job("regional_rollup", [{
        "task_key": "per_region",
        "for_each_task": {
            "inputs": json.dumps(["emea", "amer", "apac"]), "concurrency": 2,
            "task": {"task_key": "per_region_iteration", "job_cluster_key": "etl",
                     "notebook_task": {"notebook_path": "/rollup", "base_parameters": {"region": "{{input}}"}}},
        },
    }], job_clusters=[{"job_cluster_key": "etl", "new_cluster": dict(CLUSTER)}])


def task_of(run: dict, key: str) -> dict:
    return [t for t in run["tasks"] if t["task_key"] == key][-1]


# --- for_each --------------------------------------------------------------------------------------------


def test_a_for_each_parent_shows_stats_and_no_compute_while_its_iterations_run_on_the_job_cluster(sim):
    run_id = sim.fail_run(for_each_job(sim), {"per_region": ForEachFailure({1: OOM, 2: MISSING})})

    _, run = get(sim, "jobs/runs/get", run_id=run_id)
    parent = task_of(run, "per_region")
    _, parent_run = get(sim, "jobs/runs/get", run_id=parent["run_id"])

    assert parent["state"]["result_state"] == "FAILED"
    assert parent["state"]["state_message"] == CODE_FAILURE_MESSAGE
    assert "cluster_instance" not in parent
    stats = parent["for_each_task"]["stats"]
    assert stats["task_run_stats"] == {"total_iterations": 3, "scheduled_iterations": 3, "completed_iterations": 3,
                                       "succeeded_iterations": 1, "failed_iterations": 2, "active_iterations": 0}
    assert sorted(s["error_message"] for s in stats["error_message_stats"]) == sorted([OOM.error, MISSING.error])
    iterations = parent_run["iterations"]
    assert [i["state"]["result_state"] for i in iterations] == ["SUCCESS", "FAILED", "FAILED"]
    assert all(i["cluster_instance"]["cluster_id"] for i in iterations)
    assert iterations[2]["notebook_task"]["base_parameters"] == {"region": "apac"}


def test_the_cause_of_a_for_each_failure_is_in_the_iterations_get_output_not_the_parents(sim):
    run_id = sim.fail_run(for_each_job(sim), {"per_region": ForEachFailure({2: MISSING})})
    parent = task_of(sim.run(run_id), "per_region")
    _, parent_run = get(sim, "jobs/runs/get", run_id=parent["run_id"])

    _, parent_output = get(sim, "jobs/runs/get-output", run_id=parent["run_id"])
    _, iteration_output = get(sim, "jobs/runs/get-output", run_id=parent_run["iterations"][2]["run_id"])

    assert "error" not in parent_output
    assert iteration_output["error"] == MISSING.error


def test_a_repair_reruns_only_the_failed_iterations(sim):
    run_id = sim.fail_run(for_each_job(sim), {"per_region": ForEachFailure({1: OOM})})
    parent = task_of(sim.run(run_id), "per_region")
    _, before = get(sim, "jobs/runs/get", run_id=parent["run_id"])

    status, _ = post(sim, "jobs/runs/repair", {"run_id": run_id, "rerun_all_failed_tasks": True})
    sim.finish_runs()
    run = sim.run(run_id)
    _, after = get(sim, "jobs/runs/get", run_id=task_of(run, "per_region")["run_id"])

    assert status == 200 and run["state"]["result_state"] == "SUCCESS"
    old, new = [i["run_id"] for i in before["iterations"]], [i["run_id"] for i in after["iterations"]]
    assert (new[0], new[2]) == (old[0], old[2]) and new[1] != old[1]


def test_a_plain_task_failure_fails_every_iteration(sim):
    run_id = sim.fail_run(for_each_job(sim), {"per_region": OOM})

    stats = task_of(sim.run(run_id), "per_region")["for_each_task"]["stats"]

    assert stats["task_run_stats"]["failed_iterations"] == 3
    assert stats["error_message_stats"] == [{"error_message": OOM.error, "count": 3,
                                             "termination_category": "RUN_EXECUTION_ERROR"}]


# --- run_job ---------------------------------------------------------------------------------------------


def run_job_pair(sim: DatabricksSimulator) -> tuple[int, int]:
    child = sim.add_job("load_customers", [{"task_key": "load", "job_cluster_key": "etl",
                                            "notebook_task": {"notebook_path": "/load"}}],
                        job_clusters=[{"job_cluster_key": "etl", "new_cluster": dict(CLUSTER)}])
    parent = sim.add_job("orchestrate", [{"task_key": "call_load", "run_job_task": {
        "job_id": child, "job_parameters": {"day": "2024-06-11"}}}])
    return parent, child


def test_a_run_job_task_starts_a_child_run_triggered_by_run_job_task(sim):
    parent_job, child_job = run_job_pair(sim)
    run_id = sim.fail_run(parent_job, {"call_load": OOM})
    task = task_of(sim.run(run_id), "call_load")

    _, output = get(sim, "jobs/runs/get-output", run_id=task["run_id"])
    child_id = output["run_job_output"]["run_id"]
    _, child = get(sim, "jobs/runs/get", run_id=child_id)
    _, child_output = get(sim, "jobs/runs/get-output", run_id=task_of(child, "load")["run_id"])

    assert task["state"]["result_state"] == "FAILED" and "cluster_instance" not in task
    assert "error" not in output
    assert (child["job_id"], child["trigger"], child["trigger_info"]) == (child_job, "RUN_JOB_TASK",
                                                                          {"run_id": task["run_id"]})
    assert child["job_parameters"] == [{"name": "day", "value": "2024-06-11"}]
    assert child_output["error"] == OOM.error


def test_repairing_the_parent_starts_another_child_run(sim):
    parent_job, child_job = run_job_pair(sim)
    run_id = sim.fail_run(parent_job, {"call_load": OOM})

    post(sim, "jobs/runs/repair", {"run_id": run_id, "rerun_tasks": ["call_load"]})
    sim.finish_runs()

    _, children = get(sim, "jobs/runs/list", job_id=child_job)
    assert len(children["runs"]) == 2
    assert sim.run(run_id)["state"]["result_state"] == "SUCCESS"


# --- Warehouse, pipeline, dbt and condition tasks -----------------------------------------------------------


def test_sql_pipeline_dbt_and_condition_tasks_keep_their_fields_and_run_on_no_cluster(sim):
    job = sim.add_job("mixed", [
        {"task_key": "check", "condition_task": {"op": "EQUAL_TO", "left": "{{job.parameters.mode}}", "right": "full"}},
        {"task_key": "refresh", "depends_on": [{"task_key": "check", "outcome": "true"}],
         "sql_task": {"query": {"query_id": "8c1f"}, "warehouse_id": "3f8a2b71c9d04e15"}},
        {"task_key": "dlt", "depends_on": [{"task_key": "refresh"}],
         "pipeline_task": {"pipeline_id": "a1b2c3d4-0000-1111-2222-333344445555", "full_refresh": False}},
        {"task_key": "dbt", "depends_on": [{"task_key": "dlt"}], "environment_key": "dbt_env",
         "dbt_task": {"commands": ["dbt deps", "dbt run"], "warehouse_id": "3f8a2b71c9d04e15",
                      "project_directory": "/Repos/bi/dbt"}},
    ], environments=[{"environment_key": "dbt_env", "spec": {"client": "2", "dependencies": ["dbt-databricks"]}}])
    ok = sim.succeed_run(job)
    failed = sim.fail_run(job, {"dlt": TaskFailure(error="Update 7a1c failed: [DELTA_MISSING_COLUMN] in flow orders")})

    run = sim.run(ok)
    _, sql_out = get(sim, "jobs/runs/get-output", run_id=task_of(run, "refresh")["run_id"])
    _, dbt_out = get(sim, "jobs/runs/get-output", run_id=task_of(run, "dbt")["run_id"])
    _, dlt_out = get(sim, "jobs/runs/get-output", run_id=task_of(sim.run(failed), "dlt")["run_id"])

    assert task_of(run, "check")["condition_task"]["outcome"] == "true"
    assert task_of(run, "refresh")["sql_task"]["warehouse_id"] == "3f8a2b71c9d04e15"
    assert task_of(run, "dlt")["pipeline_task"]["pipeline_id"].startswith("a1b2")
    assert all("cluster_instance" not in t for t in run["tasks"])
    assert sql_out["sql_output"]["query_output"]["warehouse_id"] == "3f8a2b71c9d04e15"
    assert dbt_out["dbt_output"]["artifacts_link"]
    assert dlt_out["error"].startswith("Update 7a1c failed")
    assert task_of(sim.run(failed), "dbt")["state"]["result_state"] == "UPSTREAM_FAILED"


def test_a_failed_notebook_task_says_only_workload_failed_and_get_output_has_the_cause(sim):
    job = sim.add_job("nb", [{"task_key": "t", "notebook_task": {"notebook_path": "/t"}}])
    run_id = sim.fail_run(job, {"t": OOM})
    task = task_of(sim.run(run_id), "t")

    _, output = get(sim, "jobs/runs/get-output", run_id=task["run_id"])

    assert task["state"]["state_message"] == "Workload failed, see run output for details"
    assert (output["error"], output["error_trace"]) == (OOM.error, OOM.error_trace)


# --- Legacy parameters -------------------------------------------------------------------------------------


def legacy_job(sim: DatabricksSimulator) -> int:
    return sim.add_job("legacy", [
        {"task_key": "nb", "notebook_task": {"notebook_path": "/nb", "base_parameters": {"day": "base", "mode": "x"}}},
        {"task_key": "py", "depends_on": [{"task_key": "nb"}],
         "spark_python_task": {"python_file": "/py.py", "parameters": ["--day", "base"]}},
    ])


def test_run_now_legacy_parameters_show_in_overriding_parameters_and_reach_the_tasks(sim):
    job = legacy_job(sim)

    _, started = post(sim, "jobs/run-now", {"job_id": job, "notebook_params": {"day": "2024-06-11"},
                                           "python_params": ["--day", "2024-06-11"]})
    _, run = get(sim, "jobs/runs/get", run_id=started["run_id"])

    assert run["overriding_parameters"] == {"notebook_params": {"day": "2024-06-11"},
                                            "python_params": ["--day", "2024-06-11"]}
    assert sim.task_parameters(started["run_id"]) == {"nb": {"day": "2024-06-11", "mode": "x"},
                                                      "py": ["--day", "2024-06-11"]}


def test_a_repair_without_the_legacy_parameters_runs_the_jobs_base_values(sim):
    job = legacy_job(sim)
    run_id = sim.fail_run(job, {"nb": OOM}, overriding_parameters={"notebook_params": {"day": "2024-06-11"}})

    post(sim, "jobs/runs/repair", {"run_id": run_id, "rerun_all_failed_tasks": True})

    assert sim.task_parameters(run_id)["nb"] == {"day": "base", "mode": "x"}


def test_a_repair_that_sends_the_legacy_parameters_again_runs_with_them(sim):
    job = legacy_job(sim)
    run_id = sim.fail_run(job, {"nb": OOM}, overriding_parameters={"notebook_params": {"day": "2024-06-11"}})

    status, _ = post(sim, "jobs/runs/repair", {"run_id": run_id, "rerun_all_failed_tasks": True,
                                               "notebook_params": {"day": "2024-06-11"}})

    assert status == 200
    assert sim.task_parameters(run_id) == {"nb": {"day": "2024-06-11", "mode": "x"}, "py": ["--day", "base"]}


@pytest.mark.parametrize("body", [
    {"notebook_params": {"day": "x"}, "job_parameters": {"day": "x"}},
    {"python_params": {"not": "a list"}},
    {"notebook_params": ["not", "a map"]},
])
def test_run_now_refuses_mixed_or_mistyped_legacy_parameters(sim, body):
    status, answer = post(sim, "jobs/run-now", {"job_id": legacy_job(sim), **body})

    assert (status, answer["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


# --- The demo's shape scenarios ------------------------------------------------------------------------------


def test_the_demo_shape_scenarios_fail_in_an_iteration_and_in_a_child_run(sim):
    from localdev.databricks_sim.scenarios import MISSING_TABLE_ERROR, READ_TIMEOUT_ERROR, load_demo_workspace

    scenarios = load_demo_workspace(sim, shapes=True)
    for_each = task_of(sim.run(scenarios["for_each_iteration"][1]), "rollup_per_region")
    _, parent_run = get(sim, "jobs/runs/get", run_id=for_each["run_id"])
    call = task_of(sim.run(scenarios["run_job_child"][1]), "run_orders_load")
    _, output = get(sim, "jobs/runs/get-output", run_id=call["run_id"])
    child = sim.run(output["run_job_output"]["run_id"])
    _, child_output = get(sim, "jobs/runs/get-output", run_id=child["tasks"][0]["run_id"])

    assert len(scenarios) == 12
    assert for_each["for_each_task"]["stats"]["error_message_stats"][0]["error_message"] == MISSING_TABLE_ERROR
    assert [i["state"]["result_state"] for i in parent_run["iterations"]] == ["SUCCESS", "SUCCESS", "FAILED"]
    assert (child["trigger"], child["state"]["result_state"]) == ("RUN_JOB_TASK", "FAILED")
    assert child_output["error"] == READ_TIMEOUT_ERROR
    assert len(load_demo_workspace(sim)) == 10  # the default demo list is unchanged
