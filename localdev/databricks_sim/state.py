"""The simulated workspace: jobs, runs, clusters, and the rules the Jobs API enforces on them.

Operations raise ApiError with the status, error_code and message Databricks answers with; the server turns
it into the `{"error_code", "message"}` body. Callers hold `lock` (an RLock) around every operation.
How a started run plays out is in execution.py.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from localdev.databricks_sim.errors import ApiError, invalid
from localdev.databricks_sim.execution import RunExecution
from localdev.databricks_sim.listing import BulkRuns
from localdev.databricks_sim.model import FAILED, UPSTREAM, Cluster, JobRun, Outcome, TaskFailure, TaskRun
from localdev.databricks_sim.outage import Outage
from localdev.databricks_sim.shapes import legacy_overrides


class Workspace(RunExecution):
    """Jobs, runs and clusters of one workspace, on a clock that tests can move forward."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.lock = threading.RLock()
        self._clock = clock
        # Ids keep growing across reset(), so a test never meets a run id that an earlier test used.
        self._job_ids = itertools.count(412_000_000_000_001)
        self._run_ids = itertools.count(873_000_000_000_001)
        self._repair_ids = itertools.count(651_000_000_000_001)
        self._cluster_seq = itertools.count(1)
        self.on_run_finished: Callable[[JobRun], None] | None = None
        self.reset()

    def reset(self) -> None:
        """Forget every job, run, cluster and scripted outcome; keep the clock and the id counters."""
        with self.lock:
            self.offset_s = 0.0
            self.rerun_seconds = 0.0
            self.jobs: dict[int, dict[str, Any]] = {}
            self.runs: dict[int, JobRun] = {}
            self.task_runs: dict[int, tuple[JobRun, TaskRun]] = {}
            self.clusters: dict[str, Cluster] = {}
            self.tokens: dict[str, int] = {}
            self.scripts: dict[int, deque[Outcome]] = {}
            self.bulk = BulkRuns()
            self.updates: list[tuple[int, dict[str, Any], list[str]]] = []  # every jobs/update applied
            self.outage: Outage | None = None

    def now_ms(self) -> int:
        return int((self._clock() + self.offset_s) * 1000)

    def outage_at(self, now_ms: int) -> Outage | None:
        """The cloud outage going on at `now_ms`, if any (outage.py)."""
        return self.outage if self.outage is not None and self.outage.active(now_ms) else None

    # --- Jobs -------------------------------------------------------------------------------------------

    def add_job(self, settings: dict[str, Any], *, creator: str, job_id: int | None = None) -> int:
        job_id = job_id if job_id is not None else next(self._job_ids)
        if job_id in self.jobs:
            raise ValueError(f"job {job_id} exists")
        keys = [t["task_key"] for t in settings.get("tasks", [])]
        if not keys or len(keys) != len(set(keys)):
            raise ValueError("a job needs tasks with unique task_key values")
        self.jobs[job_id] = {
            "job_id": job_id, "creator_user_name": creator, "run_as_user_name": creator,
            "created_time": self.now_ms(), "settings": copy.deepcopy(settings),
        }
        return job_id

    def job(self, job_id: Any) -> dict[str, Any]:
        job = self.jobs.get(_int(job_id, "job_id"))
        if job is None:
            raise invalid(f"Job {job_id} does not exist.")
        return job

    def update_job(self, job_id: Any, new_settings: dict[str, Any], fields_to_remove: Iterable[str] = ()) -> None:
        """Top-level fields are replaced; tasks and job_clusters are merged by key (reference §2)."""
        job = self.job(job_id)
        settings = job["settings"]
        self.updates.append((job["job_id"], copy.deepcopy(new_settings), list(fields_to_remove)))
        for name, value in new_settings.items():
            if name in ("tasks", "job_clusters"):
                key = "task_key" if name == "tasks" else "job_cluster_key"
                merged = {item[key]: item for item in settings.get(name, [])}
                for item in value:
                    if not isinstance(item, dict) or not item.get(key):
                        raise invalid(f"Each entry of {name} needs a {key}.")
                    merged[item[key]] = copy.deepcopy(item)
                settings[name] = list(merged.values())
            else:
                settings[name] = copy.deepcopy(value)
        for field_name in fields_to_remove:
            array, _, key = field_name.partition("/")
            if key and array in ("tasks", "job_clusters"):
                id_key = "task_key" if array == "tasks" else "job_cluster_key"
                settings[array] = [i for i in settings.get(array, []) if i.get(id_key) != key]
            else:
                settings.pop(field_name, None)

    # --- Runs: reading ----------------------------------------------------------------------------------

    def find_run(self, run_id: Any) -> tuple[JobRun, TaskRun | None]:
        """The job run, or the task run and its parent."""
        rid = _int(run_id, "run_id")
        if rid in self.runs:
            return self.runs[rid], None
        if rid in self.task_runs:
            return self.task_runs[rid]
        raise invalid(f"Run {run_id} does not exist.")

    def tick(self) -> None:
        """End every execution whose time has come (reads see reruns finish this way)."""
        now = self.now_ms()
        for run in list(self.runs.values()):
            if run.completes_at is not None and run.completes_at <= now:
                self.finish_run(run)

    # --- Runs: starting ---------------------------------------------------------------------------------

    def start_job_run(
        self,
        job_id: int,
        *,
        outcome: Outcome,
        trigger: str,
        job_parameters: dict[str, str] | None = None,
        only: Iterable[str] | None = None,
        token: str | None = None,
        immediate: bool = False,
        duration_ms: int = 0,
        overriding: dict[str, Any] | None = None,
        trigger_info: dict[str, Any] | None = None,
    ) -> JobRun:
        job = self.job(job_id)
        settings = job["settings"]
        number = 1 + sum(1 for r in self.runs.values() if r.job_id == job_id)
        now = self.now_ms()
        run = JobRun(
            run_id=next(self._run_ids), job_id=job_id, run_name=settings.get("name", f"job-{job_id}"),
            number_in_job=number, run_type="JOB_RUN", trigger=trigger, start_time=now - duration_ms,
            creator_user_name=job["creator_user_name"],
            job_parameters=_resolve_parameters(settings.get("parameters", []), job_parameters or {}),
            job_clusters=copy.deepcopy(settings.get("job_clusters", [])), idempotency_token=token,
            overriding_parameters=dict(overriding or {}), trigger_info=trigger_info,
        )
        self.runs[run.run_id] = run
        if token:
            self.tokens[token] = run.run_id
        keys = list(only) if only else [t["task_key"] for t in settings["tasks"]]
        self._execute(run, keys, outcome, "ORIGINAL", None, immediate=immediate, started=run.start_time)
        return run

    def submit(self, body: dict[str, Any], *, outcome: Outcome) -> JobRun:
        tasks = body.get("tasks") or []
        if not tasks:
            raise invalid("A run needs at least one task.")
        for task in tasks:
            if "job_cluster_key" in task:
                raise invalid("job_cluster_key is not supported in runs/submit; give each task a new_cluster.")
        run = JobRun(
            run_id=next(self._run_ids), job_id=None, run_name=body.get("run_name") or "Untitled", number_in_job=1,
            run_type="SUBMIT_RUN", trigger="ONE_TIME", start_time=self.now_ms(), creator_user_name="agent@sim",
            job_parameters=[], job_clusters=[], submitted_tasks=copy.deepcopy(tasks),
            idempotency_token=body.get("idempotency_token"),
        )
        self.runs[run.run_id] = run
        if run.idempotency_token:
            self.tokens[run.idempotency_token] = run.run_id
        self._execute(run, [t["task_key"] for t in tasks], outcome, "ORIGINAL", None, immediate=False)
        return run

    def repair(self, body: dict[str, Any], *, outcome: Outcome) -> int:
        """runs/repair: the checks Databricks makes, then a rerun with the job's current settings."""
        run, task = self.find_run(body.get("run_id"))
        if task is not None or run.job_id is None:
            raise invalid(f"Run {body.get('run_id')} is not a job run and cannot be repaired.")
        if run.in_progress:
            raise ApiError(400, "INVALID_STATE", f"Run {run.run_id} is still in progress and cannot be repaired.")
        latest = next((item.id for item in reversed(run.history) if item.type == "REPAIR"), None)
        given = body.get("latest_repair_id")
        if latest is not None and given is None:
            raise invalid("The latest repair ID needs to be provided in order to create a new repair")
        if given is not None and _int(given, "latest_repair_id") != latest:
            raise invalid(f"The latest repair ID {given} does not match the latest repair {latest} of run {run.run_id}.")
        rerun_tasks, all_failed = body.get("rerun_tasks"), bool(body.get("rerun_all_failed_tasks"))
        if bool(rerun_tasks) == all_failed:
            raise invalid("Exactly one of rerun_tasks and rerun_all_failed_tasks must be set.")
        latest_tasks = run.latest_by_key()
        if all_failed:
            keys = [k for k, t in latest_tasks.items() if t.result_state in FAILED | UPSTREAM
                    or t.life_cycle_state == "INTERNAL_ERROR"]
        else:
            unknown = [k for k in rerun_tasks if k not in latest_tasks]
            if unknown or len(set(rerun_tasks)) != len(rerun_tasks):
                raise invalid(f"rerun_tasks has unknown or duplicate task keys: {rerun_tasks}")
            keys = list(rerun_tasks)
            if body.get("rerun_dependent_tasks"):
                keys = self._with_downstream(run, keys)
        if not keys:
            raise invalid(f"Run {run.run_id} has no failed tasks to repair.")
        # Legacy parameters count only when the repair sends them again; otherwise the job's own values run.
        overrides = legacy_overrides(body)
        run.overriding_parameters.update(overrides)
        if body.get("job_parameters"):
            current = {p["name"]: p.get("value", p.get("default", "")) for p in run.job_parameters}
            current.update(body["job_parameters"])
            settings = self.jobs[run.job_id]["settings"] if run.job_id in self.jobs else {}
            run.job_parameters = _resolve_parameters(settings.get("parameters", []), current)
        repair_id = next(self._repair_ids)
        self._execute(run, keys, outcome, "REPAIR", repair_id, immediate=False, overrides=overrides)
        return repair_id

    def cancel(self, run_id: Any) -> None:
        run, _ = self.find_run(run_id)
        if not run.in_progress:
            return  # cancelling a finished run is accepted and does nothing
        for task in run.tasks:
            if not task.done:
                task.planned = TaskFailure(error=None, result_state="CANCELED", termination_code="USER_CANCELED")
        self.finish_run(run)

    def script(self, target: int, outcome: Outcome, times: int) -> None:
        if target not in self.runs and target not in self.jobs:
            raise KeyError(f"{target} is neither a run id nor a job id")
        self.scripts.setdefault(target, deque()).extend([outcome] * times)

    def scripted(self, *targets: int | None) -> Outcome:
        """The next scripted outcome, taken only when a run really starts (an outage leaves it for later)."""
        def outcome(context: Any) -> Any:
            chosen = self.next_outcome(*targets)
            return chosen(context) if callable(chosen) and not isinstance(chosen, TaskFailure) else chosen
        return outcome

    def next_outcome(self, *targets: int | None) -> Outcome:
        """The next scripted outcome for the first target that has one; "success" when none does."""
        for target in targets:
            queue = self.scripts.get(target) if target is not None else None
            if queue:
                return queue.popleft()
        return "success"

def _resolve_parameters(definitions: list[dict[str, Any]], given: dict[str, str]) -> list[dict[str, Any]]:
    names = [d["name"] for d in definitions] + [n for n in given if n not in {d["name"] for d in definitions}]
    defaults = {d["name"]: d.get("default") for d in definitions}
    return [{k: v for k, v in (("name", n), ("default", defaults.get(n)),
                                ("value", str(given.get(n, defaults.get(n) or "")))) if v is not None}
            for n in names]


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise invalid(f"Invalid value for {name}: {value!r} is not an integer.") from exc
