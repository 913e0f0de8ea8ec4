"""How runs play out in the simulated workspace: tasks in dependency order, Databricks' own task retries,
clusters from the job's CURRENT settings, and the run's state derived from the newest attempt of each task.

A mixin of Workspace, kept apart from the API's rules (state.py) so each file reads on its own.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from localdev.databricks_sim.errors import invalid
from localdev.databricks_sim.model import (
    FAILED,
    Cluster,
    ClusterReason,
    JobRun,
    Outcome,
    RepairItem,
    RerunContext,
    TaskFailure,
    TaskRun,
    Termination,
    end_task,
    spark_context_for,
)
from localdev.databricks_sim.outage import Outage
from localdev.databricks_sim.shapes import TaskShapes, task_parameters


class RunExecution(TaskShapes):
    """Starting and finishing executions (an original run or one repair) of a JobRun.

    Expects from Workspace: jobs, clusters, task_runs, rerun_seconds, on_run_finished, _run_ids, _cluster_seq,
    now_ms(), outage_at() and job().
    """

    def _task_spec(self, run: JobRun, key: str) -> dict[str, Any]:
        tasks = run.submitted_tasks if run.submitted_tasks is not None else self.job(run.job_id)["settings"]["tasks"]
        for task in tasks:
            if task["task_key"] == key:
                return copy.deepcopy(task)
        raise invalid(f"Task {key} is not defined in the job any more.")

    def _cluster_spec(self, run: JobRun, spec: dict[str, Any]) -> dict[str, Any] | None:
        """The compute a task gets now: the job's CURRENT job cluster (why jobs/update + repair resizes)."""
        if "for_each_task" in spec:  # the parent runs nothing; its iterations run on the inner task's compute
            return self._cluster_spec(run, spec["for_each_task"]["task"])
        if key := spec.get("job_cluster_key"):
            clusters = self.job(run.job_id)["settings"].get("job_clusters", []) if run.job_id else []
            for cluster in clusters:
                if cluster["job_cluster_key"] == key:
                    return copy.deepcopy(cluster["new_cluster"])
            raise invalid(f"Job cluster {key} is not defined in the job.")
        if spec.get("new_cluster"):
            return copy.deepcopy(spec["new_cluster"])
        if cid := spec.get("existing_cluster_id"):
            return copy.deepcopy(self.clusters[cid].spec) if cid in self.clusters else {}
        return None  # serverless or a SQL warehouse

    def _execute(
        self,
        run: JobRun,
        keys: list[str],
        outcome: Outcome,
        kind: str,
        repair_id: int | None,
        *,
        immediate: bool,
        started: int | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        now = self.now_ms() if started is None else started
        previous = run.latest_by_key()
        specs = {key: self._task_spec(run, key) for key in keys}
        for spec in specs.values():
            self._check_shape(spec)
        overrides = run.overriding_parameters if overrides is None else overrides
        clusters = {key: self._cluster_spec(run, spec) for key, spec in specs.items()}
        failed_before = tuple(k for k in keys if k in previous and previous[k].result_state in FAILED)
        context = RerunContext(
            run_id=run.run_id, job_id=run.job_id, task_keys=tuple(keys), failed_keys=failed_before,
            previous_clusters={k: previous[k].cluster_spec if k in previous else None for k in keys},
            current_clusters=clusters,
        )
        # A cloud outage fails every cluster launch; the scripted outcome is left for the rerun after it.
        outage = self.outage_at(now) if any(_launches_cluster(spec) for spec in specs.values()) else None
        plan = {} if outage is not None else _plan(outcome, context)
        if run.job_id is not None:
            run.job_clusters = copy.deepcopy(self.jobs[run.job_id]["settings"].get("job_clusters", []))
        shared: dict[str, str] = {}  # one cluster per job cluster key per execution
        new_ids = []
        for key in _topological(specs):
            spec = specs[key]
            task = TaskRun(run_id=next(self._run_ids), task_key=key, spec=spec, start_time=now,
                           cluster_spec=clusters[key], planned=plan.get(key, "success"),
                           parameters=task_parameters(spec, overrides))
            if "for_each_task" in spec:
                self._start_iterations(run, task, previous.get(key), shared)
            elif clusters[key] is not None:
                task.cluster_id = self._cluster_for(run, spec, clusters[key], shared)
                task.spark_context_id = spark_context_for(task.cluster_id)
            if outage is not None and _launches_cluster(spec):
                _launch_fails(task, outage)
            deps = [d["task_key"] for d in spec.get("depends_on", [])]
            task.life_cycle_state = "BLOCKED" if any(d in specs for d in deps) else "RUNNING"
            run.tasks.append(task)
            self.task_runs[task.run_id] = (run, task)
            new_ids.append(task.run_id)
        run.history.append(RepairItem(kind, repair_id, now, new_ids))
        run.life_cycle_state, run.result_state, run.state_message, run.termination = "RUNNING", None, "", None
        run.end_time = 0
        if immediate:
            self.finish_run(run)
        else:
            run.completes_at = now + int(self.rerun_seconds * 1000)

    def _cluster_for(self, run: JobRun, spec: dict[str, Any], cluster_spec: dict[str, Any], shared: dict) -> str:
        if cid := spec.get("existing_cluster_id"):
            if cid not in self.clusters:
                self.clusters[cid] = Cluster(cid, f"shared-{cid[-8:]}", cluster_spec, "UI", self.now_ms())
            return cid
        key = spec.get("job_cluster_key")
        if key and key in shared:
            return shared[key]
        seq = next(self._cluster_seq)
        cid = time.strftime("%m%d-%H%M%S-", time.gmtime(self.now_ms() / 1000)) + _base36(seq * 2_654_435_761, 8)
        name = f"job-{run.job_id}-run-{run.run_id}" + (f"-{key}" if key else "")
        self.clusters[cid] = Cluster(cid, name, copy.deepcopy(cluster_spec), "JOB", self.now_ms())
        if key:
            shared[key] = cid
        return cid

    def finish_run(self, run: JobRun) -> None:
        """Apply the planned results of the running execution, in dependency order."""
        now = self.now_ms()
        run.completes_at = None
        item = run.history[-1]
        running = [t for t in run.tasks if t.run_id in set(item.task_run_ids) and not t.done]
        by_key = {t.task_key: t for t in running}
        for key in _topological({t.task_key: t.spec for t in running}):
            task = by_key[key]
            upstream = [by_key[d["task_key"]] for d in task.spec.get("depends_on", []) if d["task_key"] in by_key]
            blocked = next((u for u in upstream if u.result_state != "SUCCESS"), None)
            if blocked is not None:  # never runs, whatever was planned for it
                canceled = blocked.result_state in ("CANCELED", "UPSTREAM_CANCELED")
                task.cluster_id = task.spark_context_id = None
                _end(task, "TERMINATED", "UPSTREAM_CANCELED" if canceled else "UPSTREAM_FAILED",
                     "Upstream task(s) failed.", Termination("SKIPPED", "SUCCESS", "Upstream task(s) failed."), now)
                for iteration in task.iterations or []:  # a skipped for_each never starts its iterations
                    if not iteration.done:
                        self.task_runs.pop(iteration.run_id, None)
                task.iterations = None
                continue
            if task.iterations is not None:
                self._finish_iterations(task, now)
            elif "run_job_task" in task.spec:
                self._run_child(run, task, now)
            elif isinstance(task.planned, TaskFailure):
                self._fail(run, item, task, task.planned, now)
            else:
                _end(task, "TERMINATED", "SUCCESS", "", Termination(), now)
                if "condition_task" in task.spec:
                    task.outcome_value = "true"
        self._end_clusters(run, item, now)
        self._settle(run, item, now)
        if self.on_run_finished is not None:
            self.on_run_finished(run)

    def _fail(self, run: JobRun, item: RepairItem, task: TaskRun, failure: TaskFailure, now: int) -> None:
        # Databricks retries a failed task itself (max_retries); each retry is a new task run id.
        retries = task.spec.get("max_retries", 0) if failure.termination_code != "USER_CANCELED" else 0
        retries = 1 if retries < 0 else retries  # -1 retries forever; one retry is enough to show the shape
        attempts = [task]
        for number in range(1, retries + 1):
            retry = TaskRun(run_id=next(self._run_ids), task_key=task.task_key, spec=task.spec, attempt_number=number,
                            cluster_id=task.cluster_id, cluster_spec=task.cluster_spec,
                            spark_context_id=task.spark_context_id, start_time=now)
            run.tasks.append(retry)
            self.task_runs[retry.run_id] = (run, retry)
            item.task_run_ids.append(retry.run_id)
            attempts.append(retry)
        for attempt in attempts:
            attempt.failure = failure
            _end(attempt, failure.life_cycle_state, failure.result_state, failure.message,
                 Termination(failure.termination_code, failure.type, failure.message), now)

    def _end_clusters(self, run: JobRun, item: RepairItem, now: int) -> None:
        current = [t for t in run.tasks if t.run_id in set(item.task_run_ids)]
        tasks = [t for t in current + [i for t in current for i in t.iterations or []] if t.cluster_id]
        for task in tasks:
            cluster = self.clusters[task.cluster_id]
            reason = task.failure.cluster_reason if task.failure else None
            if reason is not None:
                cluster.termination_reason, cluster.state = reason, "TERMINATED"
                cluster.state_message = f"{reason.code}({reason.type})"
                cluster.terminated_time = now
            elif cluster.source == "JOB" and cluster.termination_reason is None:
                cluster.state, cluster.terminated_time = "TERMINATED", now
                cluster.termination_reason = ClusterReason("JOB_FINISHED", "SUCCESS")
                cluster.state_message = "Job finished"

    def _settle(self, run: JobRun, item: RepairItem, now: int) -> None:
        """The run's (and this history item's) state from the newest attempt of every task."""
        latest = run.latest_by_key()
        failures = [t for t in latest.values() if t.failure is not None and t.result_state in FAILED]
        cancelled = [t for t in failures if t.failure.termination_code == "USER_CANCELED"]
        if cancelled:
            life, result, term = "TERMINATED", "CANCELED", Termination("USER_CANCELED", "SUCCESS", "Run cancelled by user")
        elif failures:
            first = failures[0]
            message = (f"Task {first.task_key} failed with message: {first.failure.message}. "
                       "This caused all downstream tasks to get skipped.")
            life = "INTERNAL_ERROR" if first.life_cycle_state == "INTERNAL_ERROR" else "TERMINATED"
            result = "TIMEDOUT" if all(f.result_state == "TIMEDOUT" for f in failures) else "FAILED"
            term = Termination(first.failure.termination_code, first.failure.type, message)
        else:
            life, result, term = "TERMINATED", "SUCCESS", Termination()
        for target in (run, item):
            target.life_cycle_state, target.result_state, target.termination = life, result, term
            target.state_message, target.end_time = term.message, now

    def _with_downstream(self, run: JobRun, keys: list[str]) -> list[str]:
        specs = {k: t.spec for k, t in run.latest_by_key().items()}
        wanted = set(keys)
        for key in _topological(specs):
            if any(d["task_key"] in wanted for d in specs[key].get("depends_on", [])):
                wanted.add(key)
        return [k for k in _topological(specs) if k in wanted]


def _launches_cluster(spec: dict[str, Any]) -> bool:
    """Whether the task starts a new cluster (a job cluster or its own new_cluster), which an outage fails."""
    if "for_each_task" in spec:
        return _launches_cluster(spec["for_each_task"]["task"])
    return bool(spec.get("job_cluster_key") or spec.get("new_cluster"))


def _launch_fails(task: TaskRun, outage: Outage) -> None:
    # The cluster never became ready: no Spark context, and the launch failure instead of any planned result.
    targets = [i for i in task.iterations if not i.done] if task.iterations is not None else [task]
    for target in targets:
        if target.cluster_id is not None:
            target.planned, target.spark_context_id = outage.failure(target.cluster_id), None


def _plan(outcome: Outcome, context: RerunContext) -> dict[str, Any]:
    """task_key -> TaskFailure or "success", from a scripted outcome."""
    if callable(outcome) and not isinstance(outcome, TaskFailure):
        outcome = outcome(context)
    if outcome == "success" or outcome is None:
        return {}
    if isinstance(outcome, TaskFailure):
        # One failure for every task that failed before; for a fresh run, the first task.
        keys = context.failed_keys or context.task_keys[:1]
        return {key: outcome for key in keys}
    if isinstance(outcome, dict):
        return {key: failure for key, failure in outcome.items() if key in context.task_keys}
    raise TypeError(f"not an outcome: {outcome!r}")


_end = end_task


def _topological(specs: dict[str, dict[str, Any]]) -> list[str]:
    """Task keys with every task after the tasks it depends on (dependencies outside `specs` are done)."""
    ordered: list[str] = []
    pending = dict(specs)
    while pending:
        ready = [k for k, s in pending.items()
                 if all(d["task_key"] not in pending for d in s.get("depends_on", []))]
        if not ready:
            raise invalid(f"The tasks {sorted(pending)} depend on each other in a cycle.")
        for key in ready:
            ordered.append(key)
            del pending[key]
    return ordered


def _base36(number: int, width: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    for _ in range(width):
        number, rest = divmod(number, 36)
        out = digits[rest] + out
    return out
