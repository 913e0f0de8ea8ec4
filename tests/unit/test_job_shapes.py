"""Job shapes through the pipeline, with real-shaped Jobs API 2.2 answers (databricks-sdk-py service/jobs.py):
for_each iterations, run_job parents and children, tasks on warehouses and pipelines, the cause line, and
the parameters a repair re-sends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from shared.classify import classify
from shared.databricks import errors
from shared.databricks.models import ClusterInfo, Job, Run, RunOutput
from shared.decision import DecisionRecord
from shared.diagnose import is_placeholder
from shared.events import FailureEvent
from shared.exceptions import TransientError
from shared.notify.kinds import NotificationKind
from shared.notify.render import subject
from shared.pipeline import PipelineDeps, process
from shared.settings import Settings
from shared.state import MemoryStateStore
from shared.store import MemoryDecisionStore
from shared.taxonomy import Action, Category

GENERIC = "Workload failed, see run output for details"
OOM = "java.lang.OutOfMemoryError: Java heap space"
TIMEOUT = "java.net.SocketTimeoutException: Read timed out"
CLUSTER = {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_DS3_v2", "num_workers": 2}
FAILED = {"life_cycle_state": "TERMINATED", "result_state": "FAILED", "state_message": GENERIC}


def job_run(run_id: int, tasks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"run_id": run_id, "job_id": extra.pop("job_id", 42), "run_name": "nightly", "run_type": "JOB_RUN",
            "state": {"life_cycle_state": "TERMINATED", "result_state": "FAILED",
                      "state_message": f"Task {tasks[0]['task_key']} failed with message: {GENERIC}. "
                                       "This caused all downstream tasks to get skipped."},
            "tasks": tasks, "repair_history": [{"type": "ORIGINAL", "id": run_id}], **extra}


@dataclass
class FakeJobsApi:
    """Answers as the Jobs API does; records every write with its arguments."""

    runs: dict[int, dict[str, Any]]
    outputs: dict[int, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[int, dict[str, Any]] = field(default_factory=dict)
    repairs: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    updates: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    repair_error: Exception | None = None

    def get_run(self, run_id):
        return Run.model_validate(self.runs[run_id])

    def get_run_output(self, task_run_id):
        return RunOutput.model_validate(self.outputs.get(task_run_id, {}))

    def get_cluster(self, cluster_id):
        return ClusterInfo(cluster_id=cluster_id)

    def get_job(self, job_id):
        return Job.model_validate(self.jobs.get(job_id) or {
            "job_id": job_id, "settings": {"name": "nightly", "job_clusters": [
                {"job_cluster_key": "etl", "new_cluster": dict(CLUSTER)}]}})

    def repair_run(self, run_id, *, latest_repair_id, job_parameters=None, **legacy):
        if self.repair_error is not None:
            raise self.repair_error
        self.repairs.append((run_id, {"job_parameters": job_parameters, **legacy}))
        return 900 + len(self.repairs)

    def update_job_cluster(self, job_id, key, new_cluster):
        self.updates.append((job_id, key, new_cluster))


@dataclass
class Notifier:
    sent: list[DecisionRecord] = field(default_factory=list)

    def notify(self, record, job, kind=None):
        self.sent.append(record)
        return [f"{record.key}:n"]


def deps_for(api: FakeJobsApi) -> tuple[PipelineDeps, list[FailureEvent]]:
    queued: list[FailureEvent] = []
    deps = PipelineDeps(
        settings=Settings(), jobs_api=lambda ws: api, workspace_key=lambda ws: "ws", store=MemoryDecisionStore(),
        state=MemoryStateStore(), notifier=Notifier(), classify=classify,
        enqueue=lambda event, delay: queued.append(event),
    )
    return deps, queued


# --- for_each ---------------------------------------------------------------------------------------------


def for_each_api(iteration_errors: dict[int, str], stats: list[str] | None = None) -> FakeJobsApi:
    """Run 100: for_each task 'per_country' (task run 101) over three iterations on job cluster 'etl'."""
    parent_task = {
        "run_id": 101, "task_key": "per_country", "state": FAILED,
        "for_each_task": {"inputs": '["fr","de","it"]', "concurrency": 3,
                          "task": {"task_key": "per_country_iteration", "job_cluster_key": "etl",
                                   "notebook_task": {"notebook_path": "/etl/country"}},
                          "stats": {"task_run_stats": {"total_iterations": 3, "failed_iterations": len(iteration_errors)},
                                    "error_message_stats": [{"count": 1, "error_message": m,
                                                             "termination_category": "RUN_EXECUTION_ERROR"}
                                                            for m in stats or []]}},
    }
    iterations = [{"run_id": 110 + i, "task_key": "per_country_iteration", "job_cluster_key": "etl",
                   "state": FAILED if 110 + i in iteration_errors else
                   {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"}} for i in range(3)]
    runs = {100: job_run(100, [parent_task]),
            101: {"run_id": 101, "job_id": 42, "job_run_id": 100, "state": FAILED, "iterations": iterations}}
    outputs = {101: {}, **{run_id: {"error": error, "error_trace": f"{error}\n\tat etl.Country.run"}
                           for run_id, error in iteration_errors.items()}}
    return FakeJobsApi(runs, outputs)


def test_for_each_is_classified_from_its_failed_iterations_not_the_parents_empty_output():
    api = for_each_api({111: OOM, 112: OOM})
    deps, _ = deps_for(api)

    process(FailureEvent(run_id=100), deps, owner="m1")

    record = deps.store.get("ws:100:0")
    assert record.category is Category.RESOURCE
    task = record.failed_tasks[0]
    assert task.error == OOM and task.iterations_failed == 2
    assert task.compute == "job_cluster" and task.job_cluster_key == "etl"  # the iterations' cluster, not serverless


def test_for_each_resizes_the_iterations_job_cluster_and_repairs_the_failed_for_each_task():
    api = for_each_api({111: OOM})
    deps, _ = deps_for(api)

    process(FailureEvent(run_id=100), deps, owner="m1")

    record = deps.store.get("ws:100:0")
    assert record.action is Action.RETRY_WITH_NEW_PARAMS
    assert [(job, key, spec["node_type_id"]) for job, key, spec in api.updates] == [(42, "etl", "Standard_DS4_v2")]
    assert [run_id for run_id, _ in api.repairs] == [100]  # the job run: rerun_all_failed_tasks reruns the for_each


def test_for_each_iterations_that_cannot_be_read_fall_back_to_the_error_message_stats():
    api = for_each_api({}, stats=["[TABLE_OR_VIEW_NOT_FOUND] The table or view `main.sales.fr` cannot be found."])
    api.runs[101]["iterations"] = []

    deps, _ = deps_for(api)
    process(FailureEvent(run_id=100), deps, owner="m1")

    record = deps.store.get("ws:100:0")
    assert record.failed_tasks[0].error.startswith("[TABLE_OR_VIEW_NOT_FOUND]")
    assert record.action is Action.SEND_EMAIL and api.repairs == []


# --- run_job ----------------------------------------------------------------------------------------------


def run_job_api(child_error: str = TIMEOUT) -> FakeJobsApi:
    """Parent run 200 (job 42): run_job task 'load' (task run 201) started child run 300 of job 77."""
    parent = job_run(200, [{"run_id": 201, "task_key": "load", "state": FAILED,
                            "run_job_task": {"job_id": 77}},
                           {"run_id": 202, "task_key": "report", "depends_on": [{"task_key": "load"}],
                            "job_cluster_key": "etl",
                            "state": {"life_cycle_state": "TERMINATED", "result_state": "UPSTREAM_FAILED"}}])
    child = job_run(300, [{"run_id": 301, "task_key": "extract", "state": FAILED, "job_cluster_key": "etl"}],
                    job_id=77, trigger="RUN_JOB_TASK", trigger_info={"run_id": 201},
                    run_page_url="https://adb-1.azuredatabricks.net/jobs/77/runs/300")
    task_run = {"run_id": 201, "job_id": 42, "job_run_id": 200, "state": FAILED}
    return FakeJobsApi({200: parent, 201: task_run, 300: child},
                       outputs={201: {"run_job_output": {"run_id": 300}}, 301: {"error": child_error}})


@pytest.mark.parametrize("order", [("child", "parent"), ("parent", "child"), ("child", "child", "parent")])
def test_run_job_one_failure_one_decision_one_repair_on_the_parent_whatever_arrives_first(order):
    api = run_job_api()
    deps, queued = deps_for(api)
    ids = {"child": 300, "parent": 200}

    for side in order:
        process(FailureEvent(run_id=ids[side]), deps, owner=f"m-{side}")
    for event in list(queued):  # what the child's link enqueued
        process(event, deps, owner="m-queued")

    assert [run_id for run_id, _ in api.repairs] == [200]  # never the child, never twice
    assert deps.store.get("ws:300:0") is None
    record = deps.store.get("ws:200:0")
    assert record.action is Action.RETRY  # a read timeout in the child: transient, so the parent is repaired
    task = record.failed_tasks[0]
    assert task.error == TIMEOUT  # the child's cause, read through run_job_output
    assert task.linked_run_id == 300 and task.linked_run_url.endswith("/runs/300")
    assert deps.state.get("run_job_child", "ws:300")["parent_run_id"] == 200


def test_a_child_whose_parent_cannot_be_read_is_never_acted_on():
    api = run_job_api()
    del api.runs[201]
    api.get_run = _missing_for(api, 201)
    deps, queued = deps_for(api)

    result = process(FailureEvent(run_id=300), deps, owner="m1")

    assert result.status == "skipped" and api.repairs == [] and queued == []
    assert deps.store.get("ws:300:0") is None


def _missing_for(api: FakeJobsApi, missing: int):
    def get_run(run_id):
        if run_id == missing:
            raise errors.ResourceDoesNotExist(f"Run {run_id} does not exist.")
        return Run.model_validate(api.runs[run_id])
    return get_run


def test_a_resize_is_not_attempted_through_a_run_job_task():
    api = run_job_api(child_error=OOM)
    deps, _ = deps_for(api)

    process(FailureEvent(run_id=200), deps, owner="m1")

    record = deps.store.get("ws:200:0")
    assert record.action is Action.SEND_EMAIL and api.updates == [] and api.repairs == []
    assert "another job" in record.reason and "job 77" in record.reason


# --- Tasks labelled by what they run on -------------------------------------------------------------------


@pytest.mark.parametrize(("task", "label", "advice"), [
    ({"sql_task": {"warehouse_id": "a1b2c3", "query": {"query_id": "q"}}}, "SQL warehouse (warehouse a1b2c3)",
     "larger warehouse size"),
    ({"dbt_task": {"warehouse_id": "d4e5", "commands": ["dbt run"]}}, "SQL warehouse (warehouse d4e5)",
     "larger warehouse size"),
    ({"pipeline_task": {"pipeline_id": "p-123"}}, "pipeline's own compute (DLT) (pipeline p-123)",
     "pipeline's settings"),
    ({"environment_key": "default", "spark_python_task": {"python_file": "x.py"}}, "serverless compute",
     "serverless sizes itself"),
    ({"existing_cluster_id": "0101-abc", "notebook_task": {"notebook_path": "/x"}},
     "existing all-purpose cluster (cluster 0101-abc)", "resize it by hand"),
])
def test_a_task_that_needs_more_memory_is_labelled_by_what_it_runs_on_with_fitting_advice(task, label, advice):
    api = FakeJobsApi({400: job_run(400, [{"run_id": 401, "task_key": "t", "state": FAILED, **task}])},
                      outputs={401: {"error": OOM}})
    deps, _ = deps_for(api)

    process(FailureEvent(run_id=400), deps, owner="m1")

    record = deps.store.get("ws:400:0")
    assert record.action is Action.SEND_EMAIL and api.updates == [] and api.repairs == []
    assert label in record.reason and advice in record.reason
    assert "runs on serverless" not in record.reason or "serverless" in label  # the old mislabel


def test_a_condition_task_has_no_compute():
    api = FakeJobsApi({})
    run = Run.model_validate(job_run(500, [{"run_id": 501, "task_key": "if", "state": FAILED,
                                            "condition_task": {"op": "EQUAL_TO", "left": "1", "right": "2"}}]))
    assert run.tasks[0].compute == "condition"
    assert api.runs == {}


# --- The cause line ---------------------------------------------------------------------------------------


def test_the_error_that_names_the_cause_leads_not_the_generic_placeholder():
    error = "[TABLE_OR_VIEW_NOT_FOUND] The table or view `main.sales.orders` cannot be found. SQLSTATE: 42P01"
    api = FakeJobsApi({600: job_run(600, [{"run_id": 601, "task_key": "load", "state": FAILED,
                                           "job_cluster_key": "etl", "notebook_task": {"notebook_path": "/x"}}])},
                      outputs={601: {"error": error, "error_trace": f"AnalysisException: {error}\n at line 3"}})
    deps, _ = deps_for(api)

    process(FailureEvent(run_id=600), deps, owner="m1")

    record = deps.store.get("ws:600:0")
    assert record.failed_tasks[0].error == error
    assert GENERIC not in record.excerpt and all(GENERIC not in line for line in record.evidence)
    assert record.excerpt.splitlines()[0].startswith("[TABLE_OR_VIEW_NOT_FOUND]")
    text = subject(record, NotificationKind.DIAGNOSIS)
    assert "TABLE_OR_VIEW_NOT_FOUND" in text and "Workload failed" not in text


def test_when_databricks_gives_only_the_placeholder_the_email_says_so_instead_of_quoting_it():
    api = FakeJobsApi({700: job_run(700, [{"run_id": 701, "task_key": "load", "state": FAILED,
                                           "job_cluster_key": "etl"}])}, outputs={701: {}})
    deps, _ = deps_for(api)

    process(FailureEvent(run_id=700), deps, owner="m1")

    record = deps.store.get("ws:700:0")
    assert "Workload failed" not in record.failed_tasks[0].error
    assert "no error text" in record.failed_tasks[0].error
    assert "Workload failed" not in subject(record, NotificationKind.DIAGNOSIS)


@pytest.mark.parametrize("text", [
    GENERIC, f"{GENERIC}.", f"Task load failed with message: {GENERIC}. This caused all downstream tasks to get skipped.",
    f"Run result unavailable: job failed with error message {GENERIC}", "Workload failed", "",
])
def test_generic_lines_are_recognised_with_their_wrappers(text):
    assert is_placeholder(text)


@pytest.mark.parametrize("text", [
    "Task load failed with message: Cluster 0101 was terminated: AZURE_QUOTA_EXCEEDED_EXCEPTION(CLIENT_ERROR)",
    OOM, "Workload failed: java.lang.OutOfMemoryError",
])
def test_lines_that_say_something_are_not_placeholders(text):
    assert not is_placeholder(text)


# --- Repairs keep the run's parameters --------------------------------------------------------------------


@pytest.mark.parametrize(("started_with", "expected"), [
    ({"overriding_parameters": {"notebook_params": {"day": "2024-06-01"}}}, {"notebook_params": {"day": "2024-06-01"}}),
    ({"overriding_parameters": {"python_params": ["--day", "2024-06-01"], "jar_params": ["x"]}},
     {"python_params": ["--day", "2024-06-01"], "jar_params": ["x"]}),
    ({"overriding_parameters": {"python_named_params": {"day": "1"}, "spark_submit_params": ["--conf", "a=b"],
                                "sql_params": {"d": "1"}, "pipeline_params": {"full_refresh": True}}},
     {"python_named_params": {"day": "1"}, "spark_submit_params": ["--conf", "a=b"], "sql_params": {"d": "1"},
      "pipeline_params": {"full_refresh": True}}),
    ({"job_parameters": [{"name": "day", "default": "x", "value": "2024-06-01"}]},
     {"job_parameters": {"day": "2024-06-01"}}),
    ({}, {}),
])
def test_a_repair_re_sends_whatever_parameters_the_run_was_started_with(started_with, expected):
    api = FakeJobsApi({800: job_run(800, [{"run_id": 801, "task_key": "t", "state": FAILED, "job_cluster_key": "etl"}],
                                    **started_with)}, outputs={801: {"error": TIMEOUT}})
    deps, _ = deps_for(api)

    process(FailureEvent(run_id=800), deps, owner="m1")

    assert len(api.repairs) == 1
    sent = {k: v for k, v in api.repairs[0][1].items() if v is not None}
    assert sent == expected


# --- Retryable refusals are not emails --------------------------------------------------------------------


def test_a_repair_refused_with_a_retryable_400_retries_the_message_instead_of_emailing():
    api = FakeJobsApi({900: job_run(900, [{"run_id": 901, "task_key": "t", "state": FAILED, "job_cluster_key": "etl"}])},
                      outputs={901: {"error": TIMEOUT}},
                      repair_error=errors.RetryableRefusal("Could not acquire lock", status=400,
                                                           error_code="COULD_NOT_ACQUIRE_LOCK"))
    deps, _ = deps_for(api)

    with pytest.raises(TransientError):
        process(FailureEvent(run_id=900), deps, owner="m1")

    assert deps.notifier.sent == []
    assert deps.store.get("ws:900:0").action is Action.RETRY  # still a rerun, never "Databricks refused"


# --- The email names the compute, both runs, and how far a resize reaches -----------------------------------


def test_the_email_names_what_the_task_runs_on_and_the_child_run():
    from shared.notify.render import render

    api = run_job_api()
    deps, _ = deps_for(api)
    process(FailureEvent(run_id=200), deps, owner="m1")
    record = deps.store.get("ws:200:0")

    email = render(record, NotificationKind.RETRY, Settings())

    for body in (email.text, email.html):
        assert "run 200" in body or "200" in body
        assert "300" in body and "/runs/300" in body  # the child run, linked
        assert "another job (a run_job task)" in body


def test_a_resize_email_says_the_larger_cluster_reaches_other_tasks_and_runs_until_the_revert():
    from shared.notify.render import render

    api = for_each_api({111: OOM})
    deps, _ = deps_for(api)
    process(FailureEvent(run_id=100), deps, owner="m1")
    record = deps.store.get("ws:100:0")

    email = render(record, NotificationKind.RETRY, Settings())

    assert "every task of this job that uses job cluster" in email.text
    assert "starts before the revert" in email.text and "starts before the revert" in email.html
    assert "1 of its for_each iterations failed" in email.text
    assert "runs on a job cluster ('etl')" in email.text


def test_a_child_that_does_not_say_which_task_started_it_is_still_never_acted_on():
    api = run_job_api()
    del api.runs[300]["trigger_info"]
    deps, queued = deps_for(api)

    result = process(FailureEvent(run_id=300), deps, owner="m1")

    assert result.status == "skipped" and api.repairs == [] and queued == []


def test_a_cluster_that_ended_the_task_leads_with_its_termination_reason():
    api = FakeJobsApi({950: job_run(950, [{
        "run_id": 951, "task_key": "load", "job_cluster_key": "etl", "state": FAILED,
        "status": {"state": "TERMINATED", "termination_details": {"code": "CLUSTER_ERROR", "type": "CLOUD_FAILURE"}},
        "cluster_instance": {"cluster_id": "0101-quota"}}])}, outputs={951: {}})
    api.get_cluster = lambda cluster_id: ClusterInfo.model_validate({
        "cluster_id": cluster_id, "state": "TERMINATED",
        "termination_reason": {"code": "AZURE_QUOTA_EXCEEDED_EXCEPTION", "type": "CLIENT_ERROR",
                               "parameters": {"azure_error_code": "QuotaExceeded"}}})
    deps, _ = deps_for(api)

    process(FailureEvent(run_id=950), deps, owner="m1")

    record = deps.store.get("ws:950:0")
    assert record.failed_tasks[0].error.startswith("Cluster terminated: AZURE_QUOTA_EXCEEDED_EXCEPTION(CLIENT_ERROR)")
    assert record.category is Category.QUOTA and api.repairs == []
    assert "Workload failed" not in subject(record, NotificationKind.DIAGNOSIS)
