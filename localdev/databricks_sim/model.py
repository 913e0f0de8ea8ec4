"""What the simulated workspace keeps (jobs, runs, task runs, clusters) and how each renders as Jobs API 2.2 JSON.

Shapes follow ../shared/reference/databricks.md §2-3. Empty and None fields are left out, as the real API does,
so a client that assumes a field is always present fails here first.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Union

# Task result states that a repair with rerun_all_failed_tasks picks up.
FAILED = frozenset({"FAILED", "TIMEDOUT", "CANCELED", "MAXIMUM_CONCURRENT_RUNS_REACHED"})
UPSTREAM = frozenset({"UPSTREAM_FAILED", "UPSTREAM_CANCELED"})
# termination_details.type when a failure does not say (the SDK enum's descriptions).
TERMINATION_TYPES = {
    "SUCCESS": "SUCCESS",
    "USER_CANCELED": "SUCCESS",
    "SKIPPED": "SUCCESS",
    "INTERNAL_ERROR": "INTERNAL_ERROR",
    "DRIVER_ERROR": "INTERNAL_ERROR",
    "CLUSTER_ERROR": "INTERNAL_ERROR",
    "CLOUD_FAILURE": "CLOUD_FAILURE",
}
CODE_FAILURE_MESSAGE = "Workload failed, see run output for details"


@dataclass(frozen=True)
class ClusterReason:
    """A cluster's `termination_reason` as clusters/get returns it."""

    code: str
    type: str = "CLIENT_ERROR"
    parameters: dict[str, str] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        return _prune({"code": self.code, "type": self.type, "parameters": dict(self.parameters)})


@dataclass(frozen=True)
class TaskFailure:
    """How one task run ends badly: the get-output text, the states, and optionally why its cluster died."""

    error: str | None
    error_trace: str | None = None
    result_state: str = "FAILED"  # FAILED | TIMEDOUT | CANCELED
    termination_code: str = "RUN_EXECUTION_ERROR"
    termination_type: str | None = None  # default: TERMINATION_TYPES, else CLIENT_ERROR
    state_message: str | None = None  # default: "Workload failed, see run output for details"
    cluster_reason: ClusterReason | None = None
    life_cycle_state: str = "TERMINATED"  # INTERNAL_ERROR for cluster-launch failures
    logs: str | None = None

    @property
    def message(self) -> str:
        if self.state_message is not None:
            return self.state_message
        if self.termination_code == "USER_CANCELED":
            return "Run cancelled by user"
        return CODE_FAILURE_MESSAGE

    @property
    def type(self) -> str:
        return self.termination_type or TERMINATION_TYPES.get(self.termination_code, "CLIENT_ERROR")


@dataclass(frozen=True)
class ForEachFailure:
    """How the iterations of a for_each task end: failures by iteration index (the others succeed)."""

    iterations: dict[int, TaskFailure]


@dataclass(frozen=True)
class RerunContext:
    """What an outcome callable sees when a repair or run-now starts."""

    run_id: int
    job_id: int | None
    task_keys: tuple[str, ...]  # the tasks about to run
    failed_keys: tuple[str, ...]  # of those, the ones whose previous attempt failed on its own
    previous_clusters: dict[str, dict[str, Any] | None]  # task_key -> cluster spec of its previous attempt
    current_clusters: dict[str, dict[str, Any] | None]  # task_key -> cluster spec it will run on now


# "success", one failure for every task that failed before, failures by task key, or a callable deciding.
# For a for_each task a TaskFailure fails every iteration that runs; ForEachFailure picks them by index.
# For a run_job task the failure is the child run's (its first task fails with it).
Outcome = Union[Literal["success"], TaskFailure, dict[str, Union[TaskFailure, ForEachFailure]],
                Callable[[RerunContext], Any]]
# Legacy task parameters of run-now and runs/repair, shown back in runs/get `overriding_parameters`.
LEGACY_PARAMS = ("notebook_params", "python_params", "python_named_params", "jar_params", "spark_submit_params",
                 "sql_params", "dbt_commands", "pipeline_params")


@dataclass
class Termination:
    code: str = "SUCCESS"
    type: str = "SUCCESS"
    message: str = ""

    def to_api(self) -> dict[str, Any]:
        return {"code": self.code, "type": self.type, "message": self.message}


@dataclass
class TaskRun:
    """One attempt of one task inside a job run."""

    run_id: int
    task_key: str
    spec: dict[str, Any]  # the task's settings when it ran
    attempt_number: int = 0
    life_cycle_state: str = "PENDING"
    result_state: str | None = None
    state_message: str = ""
    termination: Termination | None = None
    cluster_id: str | None = None
    cluster_spec: dict[str, Any] | None = None
    spark_context_id: str | None = None
    start_time: int = 0
    end_time: int = 0
    failure: TaskFailure | None = None
    planned: Any = "success"  # TaskFailure | ForEachFailure | "success"
    iterations: list[TaskRun] | None = None  # for_each parent: one task run per input, newest attempts
    child_run_id: int | None = None  # run_job task: the run it started
    parameters: Any = None  # the task parameters this attempt ran with (notebook: dict, python: list)
    outcome_value: str | None = None  # condition task: "true" | "false"

    @property
    def done(self) -> bool:
        return self.life_cycle_state in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR")


@dataclass
class RepairItem:
    type: str  # ORIGINAL | REPAIR
    id: int | None
    start_time: int
    task_run_ids: list[int]
    end_time: int = 0
    life_cycle_state: str = "RUNNING"
    result_state: str | None = None
    state_message: str = ""
    termination: Termination | None = None


@dataclass
class JobRun:
    """A job run (or a one-time submit run) with every task attempt, its history and its parameters."""

    run_id: int
    job_id: int | None
    run_name: str
    number_in_job: int
    run_type: str
    trigger: str
    start_time: int
    creator_user_name: str
    job_parameters: list[dict[str, Any]]
    job_clusters: list[dict[str, Any]]
    tasks: list[TaskRun] = field(default_factory=list)
    history: list[RepairItem] = field(default_factory=list)
    end_time: int = 0
    life_cycle_state: str = "RUNNING"
    result_state: str | None = None
    state_message: str = ""
    termination: Termination | None = None
    completes_at: int | None = None  # sim time (ms) when the running execution ends
    submitted_tasks: list[dict[str, Any]] | None = None  # runs/submit only
    idempotency_token: str | None = None
    overriding_parameters: dict[str, Any] = field(default_factory=dict)
    trigger_info: dict[str, Any] | None = None  # RUN_JOB_TASK children: {"run_id": the parent's task run}

    @property
    def in_progress(self) -> bool:
        return self.life_cycle_state not in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR")

    def latest_by_key(self) -> dict[str, TaskRun]:
        """The newest attempt of each task key (attempts and repairs accumulate in `tasks`)."""
        latest: dict[str, TaskRun] = {}
        for task in self.tasks:
            latest[task.task_key] = task
        return latest


@dataclass
class Cluster:
    cluster_id: str
    cluster_name: str
    spec: dict[str, Any]
    source: str  # JOB | UI | API
    start_time: int
    state: str = "RUNNING"
    state_message: str = ""
    termination_reason: ClusterReason | None = None
    terminated_time: int = 0


def state_json(life_cycle: str, result: str | None, message: str, cancelled: bool = False) -> dict[str, Any]:
    return _prune({
        "life_cycle_state": life_cycle, "result_state": result, "state_message": message,
        "user_cancelled_or_timedout": cancelled,
    }, keep_false=True)


def status_json(life_cycle: str, termination: Termination | None) -> dict[str, Any]:
    # status.state has no INTERNAL_ERROR or SKIPPED: those end as TERMINATED with a termination code.
    state = "TERMINATED" if life_cycle in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR") else life_cycle
    if life_cycle == "WAITING_FOR_RETRY":
        state = "WAITING"
    return _prune({"state": state, "termination_details": termination.to_api() if termination else None})


def task_json(task: TaskRun, run: JobRun, base_url: str, workspace_id: str) -> dict[str, Any]:
    cancelled = task.result_state in ("CANCELED", "TIMEDOUT")
    spec = task.spec
    out = {
        "run_id": task.run_id,
        "task_key": task.task_key,
        "description": spec.get("description"),
        "attempt_number": task.attempt_number,
        "state": state_json(task.life_cycle_state, task.result_state, task.state_message, cancelled),
        "status": status_json(task.life_cycle_state, task.termination),
        "depends_on": copy.deepcopy(spec.get("depends_on")),
        "run_if": spec.get("run_if", "ALL_SUCCESS") if spec.get("depends_on") else None,
        "job_cluster_key": spec.get("job_cluster_key"),
        "existing_cluster_id": spec.get("existing_cluster_id"),
        "new_cluster": copy.deepcopy(spec.get("new_cluster")),
        "environment_key": spec.get("environment_key"),
        "cluster_instance": _prune({"cluster_id": task.cluster_id, "spark_context_id": task.spark_context_id}),
        "max_retries": spec.get("max_retries"),
        "min_retry_interval_millis": spec.get("min_retry_interval_millis"),
        "retry_on_timeout": spec.get("retry_on_timeout"),
        "timeout_seconds": spec.get("timeout_seconds"),
        "start_time": task.start_time,
        "end_time": task.end_time,
        "run_page_url": run_page_url(base_url, workspace_id, run.job_id, task.run_id),
    }
    for kind in TASK_KINDS:
        if kind in spec:
            out[kind] = copy.deepcopy(spec[kind])
    if task.iterations is not None:
        out["for_each_task"]["stats"] = for_each_stats(task.iterations, total=len(task.iterations))
    if task.outcome_value is not None and "condition_task" in out:
        out["condition_task"]["outcome"] = task.outcome_value
    return _prune(out, keep_false=True)


def for_each_stats(iterations: list[TaskRun], *, total: int) -> dict[str, Any]:
    """`for_each_task.stats`: iteration counts and the three most common error messages (SDK ForEachStats)."""
    failed = [i for i in iterations if i.failure is not None and i.result_state in FAILED]
    done = [i for i in iterations if i.done]
    messages: dict[tuple[str, str], int] = {}
    for item in failed:
        text = (item.failure.error or item.failure.message).splitlines()[0] if (item.failure.error or item.failure.message) else ""
        key = (text, item.failure.termination_code)
        messages[key] = messages.get(key, 0) + 1
    common = sorted(messages.items(), key=lambda kv: -kv[1])[:3]
    return _prune({
        "task_run_stats": {
            "total_iterations": total, "scheduled_iterations": len(iterations),
            "active_iterations": len(iterations) - len(done), "completed_iterations": len(done),
            "succeeded_iterations": sum(1 for i in done if i.result_state == "SUCCESS"),
            "failed_iterations": len(failed),
        },
        "error_message_stats": [{"error_message": text, "count": count, "termination_category": code}
                                for (text, code), count in common],
    })


TASK_KINDS = (
    "notebook_task", "spark_python_task", "python_wheel_task", "spark_jar_task", "sql_task", "dbt_task",
    "pipeline_task", "run_job_task", "condition_task", "for_each_task", "spark_submit_task",
)


def history_json(item: RepairItem) -> dict[str, Any]:
    return _prune({
        "type": item.type, "id": item.id, "start_time": item.start_time, "end_time": item.end_time,
        "state": state_json(item.life_cycle_state, item.result_state, item.state_message),
        "status": status_json(item.life_cycle_state, item.termination),
        "task_run_ids": list(item.task_run_ids),
    })


def run_json(run: JobRun, base_url: str, workspace_id: str, *, include_history: bool) -> dict[str, Any]:
    """The whole run; pagination of its arrays is the server's business."""
    cancelled = run.result_state in ("CANCELED", "TIMEDOUT")
    duration = (run.end_time - run.start_time) if run.end_time else 0
    out = {
        "job_id": run.job_id,
        "run_id": run.run_id,
        "number_in_job": run.number_in_job,
        "original_attempt_run_id": run.run_id,
        "attempt_number": 0,
        "creator_user_name": run.creator_user_name,
        "run_name": run.run_name,
        "run_type": run.run_type,
        "trigger": run.trigger,
        "state": state_json(run.life_cycle_state, run.result_state, run.state_message, cancelled),
        "status": status_json(run.life_cycle_state, run.termination),
        "start_time": run.start_time,
        "end_time": run.end_time,
        "setup_duration": 0,
        "execution_duration": 0,
        "cleanup_duration": 0,
        "run_duration": duration,
        "queue_duration": 0,
        "run_page_url": run_page_url(base_url, workspace_id, run.job_id, run.run_id),
        "tasks": [task_json(t, run, base_url, workspace_id) for t in run.tasks],
        "job_clusters": copy.deepcopy(run.job_clusters),
        "job_parameters": copy.deepcopy(run.job_parameters),
        "overriding_parameters": copy.deepcopy(run.overriding_parameters),
        "trigger_info": copy.deepcopy(run.trigger_info),
        "repair_history": [history_json(item) for item in run.history] if include_history else None,
    }
    return _prune(out, keep_false=True)


# The fields of a Run (databricks-sdk service/jobs.py); a task run read with runs/get shows only these.
RUN_FIELDS = frozenset({
    "attempt_number", "cleanup_duration", "cluster_instance", "cluster_spec", "creator_user_name", "description",
    "end_time", "execution_duration", "git_source", "iterations", "job_clusters", "job_id", "job_parameters",
    "job_run_id", "number_in_job", "original_attempt_run_id", "overriding_parameters", "queue_duration",
    "repair_history", "run_duration", "run_id", "run_name", "run_page_url", "run_type", "schedule",
    "setup_duration", "start_time", "state", "status", "tasks", "trigger", "trigger_info",
})


def cluster_json(cluster: Cluster) -> dict[str, Any]:
    spec = cluster.spec
    return _prune({
        "cluster_id": cluster.cluster_id,
        "cluster_name": cluster.cluster_name,
        "cluster_source": cluster.source,
        **copy.deepcopy(spec),
        "state": cluster.state,
        "state_message": cluster.state_message,
        "start_time": cluster.start_time,
        "terminated_time": cluster.terminated_time,
        "termination_reason": cluster.termination_reason.to_api() if cluster.termination_reason else None,
    })


def end_task(task: TaskRun, life: str, result: str, message: str, term: Termination, now: int) -> None:
    task.life_cycle_state, task.result_state, task.state_message = life, result, message
    task.termination, task.end_time = term, now


def spark_context_for(cluster_id: str) -> str:
    return str(int(hashlib.sha256(cluster_id.encode()).hexdigest()[:15], 16))


def run_page_url(base_url: str, workspace_id: str, job_id: int | None, run_id: int) -> str:
    if job_id is None:
        return f"{base_url}/?o={workspace_id}#run/{run_id}"
    return f"{base_url}/?o={workspace_id}#job/{job_id}/run/{run_id}"


def _prune(data: dict[str, Any], *, keep_false: bool = False) -> dict[str, Any]:
    """Drop None, empty strings and empty containers (and False unless kept), as the real API omits them."""
    out = {}
    for key, value in data.items():
        if value is None or value == "" or value == [] or value == {}:
            continue
        if value is False and not keep_false:
            continue
        out[key] = value
    return out


def succeed_if_resized(failure: TaskFailure) -> Callable[[RerunContext], Any]:
    """An outcome: success once every previously failed task runs on a larger cluster, else `failure` again."""

    def decide(context: RerunContext) -> Any:
        same = [k for k in context.failed_keys
                if not _larger(context.current_clusters.get(k), context.previous_clusters.get(k))]
        return {key: failure for key in same} if same else "success"

    return decide


def _larger(now: dict[str, Any] | None, before: dict[str, Any] | None) -> bool:
    if not now or not before:
        return False  # serverless (or unknown) compute cannot be resized

    def workers(spec: dict[str, Any]) -> int:
        return int(spec.get("autoscale", {}).get("max_workers", spec.get("num_workers", 0)))

    node_changed = (now.get("node_type_id"), now.get("driver_node_type_id")) != (
        before.get("node_type_id"), before.get("driver_node_type_id"))
    return node_changed or workers(now) > workers(before)
