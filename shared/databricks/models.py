"""Typed views of the Jobs API 2.2 objects the agent reads (../shared/reference/databricks.md §2-3).

Only the fields the agent uses are declared; everything else is kept (extra="allow") so nothing is lost
when a spec is written back. Cluster specs stay plain dicts for the same reason: jobs/update must send
back every key the job had, including ones this code has never heard of.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.databricks import compute as _compute

# Terminal life-cycle states; anything else means "not finished yet".
TERMINAL_LIFE_CYCLE = frozenset({"TERMINATED", "SKIPPED", "INTERNAL_ERROR"})
# Result states of a run (or a repair) that worked; SUCCESS_WITH_FAILURES means every leaf task succeeded.
SUCCEEDED_RESULT_STATES = frozenset({"SUCCESS", "SUCCESS_WITH_FAILURES"})
# Task result states that count as a failure the agent should look at.
FAILED_RESULT_STATES = frozenset({"FAILED", "TIMEDOUT", "CANCELED", "MAXIMUM_CONCURRENT_RUNS_REACHED"})
# Result states of tasks that never ran because of another task: not a cause, never re-classified.
UPSTREAM_RESULT_STATES = frozenset({"UPSTREAM_FAILED", "UPSTREAM_CANCELED", "EXCLUDED", "DISABLED"})
# The per-task-type parameters a run can be started with instead of job_parameters (`RunParameters` in
# databricks-sdk-py service/jobs.py); runs/repair and run-now accept each of them under the same name.
LEGACY_PARAMETER_FIELDS = ("notebook_params", "python_params", "jar_params", "spark_submit_params",
                           "python_named_params", "sql_params", "dbt_commands", "pipeline_params")
# `Run.trigger` of a run started by another job's run_job task.
RUN_JOB_TRIGGER = "RUN_JOB_TASK"


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class RunState(_Model):
    life_cycle_state: str | None = None
    result_state: str | None = None
    state_message: str | None = None
    user_cancelled_or_timedout: bool | None = None


class TerminationDetails(_Model):
    code: str | None = None
    type: str | None = None
    message: str | None = None


class RunStatus(_Model):
    state: str | None = None
    termination_details: TerminationDetails | None = None


class ClusterInstance(_Model):
    cluster_id: str | None = None
    spark_context_id: str | None = None


class RunTask(_Model):
    """One task run inside a job run (`Run.tasks[]`)."""

    run_id: int
    task_key: str
    attempt_number: int = 0
    state: RunState = Field(default_factory=RunState)
    status: RunStatus | None = None
    cluster_instance: ClusterInstance | None = None
    job_cluster_key: str | None = None
    existing_cluster_id: str | None = None
    new_cluster: dict[str, Any] | None = None
    environment_key: str | None = None
    max_retries: int | None = None
    start_time: int | None = None
    end_time: int | None = None
    run_page_url: str | None = None
    # The task's kind; kept as dicts (only a few keys are read, everything else passes through).
    for_each_task: dict[str, Any] | None = None  # {inputs, task: <nested Task>, concurrency, stats}
    run_job_task: dict[str, Any] | None = None  # {job_id, job_parameters ...}
    sql_task: dict[str, Any] | None = None  # {warehouse_id ...}
    dbt_task: dict[str, Any] | None = None  # {warehouse_id?, commands ...}
    pipeline_task: dict[str, Any] | None = None  # {pipeline_id, full_refresh}
    condition_task: dict[str, Any] | None = None

    @property
    def failed(self) -> bool:
        return self.state.result_state in FAILED_RESULT_STATES or self.state.life_cycle_state == "INTERNAL_ERROR"

    @property
    def compute(self) -> str:
        """What the task runs on (shared.databricks.compute.KINDS): decides whether a resize is possible.

        A for_each task runs on its nested task's compute; only "job_cluster" can be resized by the agent.
        """
        return _compute.kind_of(self.model_dump(exclude_none=True))

    @property
    def compute_detail(self) -> str | None:
        """The id naming the compute (warehouse, pipeline, job, cluster key), for people."""
        return _compute.detail_of(self.model_dump(exclude_none=True))

    @property
    def cluster_key(self) -> str | None:
        """The job cluster the task's work runs on: its own, or a for_each task's nested task's."""
        if self.job_cluster_key:
            return self.job_cluster_key
        nested = (self.for_each_task or {}).get("task") or {}
        return nested.get("job_cluster_key")

    @property
    def error_message_stats(self) -> list[str]:
        """A for_each task's most common iteration errors (`for_each_task.stats.error_message_stats`)."""
        stats = ((self.for_each_task or {}).get("stats") or {}).get("error_message_stats") or []
        return [str(s.get("error_message")) for s in stats if isinstance(s, dict) and s.get("error_message")]


class RepairHistoryItem(_Model):
    type: str | None = None  # ORIGINAL | REPAIR
    id: int | None = None
    start_time: int | None = None
    end_time: int | None = None
    state: RunState | None = None
    status: RunStatus | None = None
    task_run_ids: list[int] = Field(default_factory=list)


class JobParameter(_Model):
    name: str
    default: str | None = None
    value: str | None = None


class Run(_Model):
    """A job run as `runs/get?include_history=true` returns it (tasks and history already paged in)."""

    run_id: int
    job_id: int | None = None
    run_name: str | None = None
    job_run_id: int | None = None
    attempt_number: int = 0
    original_attempt_run_id: int | None = None
    state: RunState = Field(default_factory=RunState)
    status: RunStatus | None = None
    tasks: list[RunTask] = Field(default_factory=list)
    job_clusters: list[dict[str, Any]] = Field(default_factory=list)
    job_parameters: list[JobParameter] = Field(default_factory=list)
    repair_history: list[RepairHistoryItem] = Field(default_factory=list)
    start_time: int | None = None
    end_time: int | None = None
    run_page_url: str | None = None
    run_type: str | None = None
    trigger: str | None = None
    trigger_info: dict[str, Any] | None = None  # {run_id: the run_job task run that started this run}
    overriding_parameters: dict[str, Any] | None = None  # the legacy parameters the run was started with
    iterations: list[RunTask] = Field(default_factory=list)  # a for_each task run's iterations (runs/get)

    @property
    def is_run_job_child(self) -> bool:
        """Started by another job's run_job task (`trigger: RUN_JOB_TASK`), whether or not it says which."""
        return self.trigger == RUN_JOB_TRIGGER

    @property
    def started_by_run_job_task(self) -> int | None:
        """The run_job task run that started this run (trigger RUN_JOB_TASK), if it was one."""
        if self.trigger != RUN_JOB_TRIGGER:
            return None
        value = (self.trigger_info or {}).get("run_id")
        return int(value) if value is not None else None

    @property
    def terminal(self) -> bool:
        return self.state.life_cycle_state in TERMINAL_LIFE_CYCLE

    @property
    def repair_count(self) -> int:
        return sum(1 for item in self.repair_history if item.type == "REPAIR")

    @property
    def latest_repair_id(self) -> int | None:
        repairs = [item.id for item in self.repair_history if item.type == "REPAIR" and item.id is not None]
        return repairs[-1] if repairs else None

    @property
    def termination(self) -> TerminationDetails:
        return (self.status.termination_details if self.status else None) or TerminationDetails()

    def latest_tasks(self) -> list[RunTask]:
        """One entry per task_key, the newest: runs/get keeps every attempt's entry, repairs included."""
        newest: dict[str, RunTask] = {}
        for task in self.tasks:
            seen = newest.get(task.task_key)
            if seen is None or (task.start_time or 0, task.run_id) >= (seen.start_time or 0, seen.run_id):
                newest[task.task_key] = task
        return list(newest.values())

    def failed_tasks(self) -> list[RunTask]:
        """The tasks whose latest attempt failed on its own (not skipped because something upstream failed)."""
        return [t for t in self.latest_tasks() if t.failed and t.state.result_state not in UPSTREAM_RESULT_STATES]

    def parameters_for_repair(self) -> dict[str, str]:
        """The run's resolved job parameters: passed back on repair so they resolve the same way."""
        return {p.name: p.value if p.value is not None else (p.default or "") for p in self.job_parameters}

    def repair_parameters(self) -> dict[str, Any]:
        """Keyword arguments for runs/repair (and run-now) that restart the run with what it was started with.

        Job-level parameters when the job has them (a job with job parameters refuses the legacy kinds),
        else every legacy kind in `overriding_parameters` (notebook_params, python_params ...), as given.
        """
        if self.job_parameters:
            return {"job_parameters": self.parameters_for_repair()}
        given = self.overriding_parameters or {}
        return {name: given[name] for name in LEGACY_PARAMETER_FIELDS if given.get(name) not in (None, {}, [])}


class RunOutput(_Model):
    """`runs/get-output` of one task run."""

    error: str | None = None
    error_trace: str | None = None
    logs: str | None = None
    logs_truncated: bool | None = None
    notebook_output: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    run_job_output: dict[str, Any] | None = None  # {run_id: the run the run_job task started}
    sql_output: dict[str, Any] | None = None
    dbt_output: dict[str, Any] | None = None

    @property
    def child_run_id(self) -> int | None:
        """The run a run_job task started (`run_job_output.run_id`)."""
        value = (self.run_job_output or {}).get("run_id")
        return int(value) if value is not None else None


class TerminationReason(_Model):
    code: str | None = None
    type: str | None = None
    parameters: dict[str, str] = Field(default_factory=dict)


class ClusterInfo(_Model):
    """`clusters/get`: what matters is why the cluster ended."""

    cluster_id: str
    state: str | None = None
    state_message: str | None = None
    termination_reason: TerminationReason | None = None


class JobSettings(_Model):
    name: str | None = None
    tasks: list[dict[str, Any]] = Field(default_factory=list)
    job_clusters: list[dict[str, Any]] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)
    email_notifications: dict[str, Any] = Field(default_factory=dict)
    max_concurrent_runs: int | None = None


class Job(_Model):
    """`jobs/get`."""

    job_id: int
    creator_user_name: str | None = None
    run_as_user_name: str | None = None
    settings: JobSettings = Field(default_factory=JobSettings)

    def job_cluster(self, key: str) -> dict[str, Any] | None:
        """The `new_cluster` spec of job cluster `key`, or None."""
        for cluster in self.settings.job_clusters:
            if cluster.get("job_cluster_key") == key:
                return cluster.get("new_cluster")
        return None


class RunSummary(_Model):
    """One row of `runs/list`."""

    run_id: int
    job_id: int | None = None
    run_name: str | None = None
    run_type: str | None = None  # JOB_RUN | SUBMIT_RUN | WORKFLOW_RUN
    state: RunState = Field(default_factory=RunState)
    start_time: int | None = None
    end_time: int | None = None
    trigger: str | None = None  # RUN_JOB_TASK: a child of a run_job task (its parent is decided instead)


class RunsPage(_Model):
    """One page of `runs/list`: its runs, newest first, and the token of the next page (None: the last)."""

    runs: list[RunSummary] = Field(default_factory=list)
    next_page_token: str | None = None
