"""Task shapes beyond "run code on a cluster": for_each iterations, run_job children, condition outcomes, and
the legacy task parameters (notebook_params, python_params, ...) a run or a repair runs with.

Shapes follow databricks-sdk's `service/jobs.py` models (RunTask.for_each_task.stats, Run.iterations,
RunOutput.run_job_output, Run.trigger_info, RunParameters). A mixin of RunExecution; where the documentation
is silent (the parent's messages), the simulator shows as little as possible, so a client must dig.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from localdev.databricks_sim.errors import invalid
from localdev.databricks_sim.model import (
    CODE_FAILURE_MESSAGE,
    FAILED,
    LEGACY_PARAMS,
    ForEachFailure,
    JobRun,
    TaskFailure,
    TaskRun,
    Termination,
    end_task,
    spark_context_for,
)


class TaskShapes:
    """Expects from Workspace: jobs, task_runs, _run_ids, _cluster_for, start_job_run, scripted, job()."""

    def _check_shape(self, spec: dict[str, Any]) -> None:
        if "run_job_task" in spec:
            self.job(spec["run_job_task"].get("job_id"))  # INVALID_PARAMETER_VALUE when it does not exist
        if "for_each_task" in spec:
            _inputs(spec["for_each_task"].get("inputs"))

    def _start_iterations(self, run: JobRun, task: TaskRun, previous: TaskRun | None, shared: dict) -> None:
        """One task run per input; a repair keeps the iterations that succeeded and reruns the others."""
        inner = task.spec["for_each_task"]["task"]
        kept = {}
        if previous is not None and previous.iterations:
            kept = {n: it for n, it in enumerate(previous.iterations) if it.result_state == "SUCCESS"}
        task.iterations = []
        for number, value in enumerate(_inputs(task.spec["for_each_task"].get("inputs"))):
            if number in kept:
                task.iterations.append(kept[number])
                continue
            iteration = TaskRun(run_id=next(self._run_ids), task_key=inner["task_key"], spec=_with_input(inner, value),
                                start_time=task.start_time, cluster_spec=task.cluster_spec,
                                life_cycle_state="RUNNING", planned=_iteration_plan(task.planned, number),
                                parameters=task.parameters)
            if task.cluster_spec is not None:
                iteration.cluster_id = self._cluster_for(run, inner, task.cluster_spec, shared)
                iteration.spark_context_id = spark_context_for(iteration.cluster_id)
            self.task_runs[iteration.run_id] = (run, iteration)
            task.iterations.append(iteration)

    def _finish_iterations(self, task: TaskRun, now: int) -> None:
        for iteration in task.iterations or []:
            if iteration.done:
                continue
            if isinstance(iteration.planned, TaskFailure):
                failure = iteration.planned
                iteration.failure = failure
                end_task(iteration, failure.life_cycle_state, failure.result_state, failure.message,
                         Termination(failure.termination_code, failure.type, failure.message), now)
            else:
                end_task(iteration, "TERMINATED", "SUCCESS", "", Termination(), now)
        failed = [i for i in task.iterations or [] if i.result_state in FAILED]
        if failed:
            # The parent says only that it failed; the causes are in the iterations (and in stats).
            task.failure = TaskFailure(error=None, termination_code=failed[0].failure.termination_code)
            end_task(task, "TERMINATED", "FAILED", CODE_FAILURE_MESSAGE,
                     Termination(task.failure.termination_code, task.failure.type, CODE_FAILURE_MESSAGE), now)
        else:
            end_task(task, "TERMINATED", "SUCCESS", "", Termination(), now)

    def _run_child(self, run: JobRun, task: TaskRun, now: int) -> None:
        """A run_job task starts a run of its job (trigger RUN_JOB_TASK) and ends as that run ends."""
        spec = task.spec["run_job_task"]
        child_job = spec["job_id"]
        outcome = task.planned if isinstance(task.planned, TaskFailure) else self.scripted(child_job)
        child = self.start_job_run(
            int(child_job), outcome=outcome, trigger="RUN_JOB_TASK", job_parameters=spec.get("job_parameters"),
            overriding={k: copy.deepcopy(spec[k]) for k in LEGACY_PARAMS if k in spec},
            trigger_info={"run_id": task.run_id}, immediate=True,
        )
        task.child_run_id = child.run_id
        if child.result_state == "SUCCESS":
            end_task(task, "TERMINATED", "SUCCESS", "", Termination(), now)
            return
        code = child.termination.code if child.termination else "RUN_EXECUTION_ERROR"
        task.failure = TaskFailure(error=None, termination_code=code,
                                   result_state="CANCELED" if child.result_state == "CANCELED" else "FAILED")
        end_task(task, "TERMINATED", task.failure.result_state, CODE_FAILURE_MESSAGE,
                 Termination(code, task.failure.type, CODE_FAILURE_MESSAGE), now)


def task_parameters(spec: dict[str, Any], overrides: dict[str, Any]) -> Any:
    """The parameters a task runs with: its settings' values, replaced or merged with the legacy overrides."""
    if "notebook_task" in spec:
        return {**spec["notebook_task"].get("base_parameters", {}), **overrides.get("notebook_params", {})}
    if "spark_python_task" in spec:
        return list(overrides.get("python_params") or spec["spark_python_task"].get("parameters", []))
    if "python_wheel_task" in spec:
        wheel = spec["python_wheel_task"]
        if overrides.get("python_named_params") or wheel.get("named_parameters"):
            return {**wheel.get("named_parameters", {}), **overrides.get("python_named_params", {})}
        return list(overrides.get("python_params") or wheel.get("parameters", []))
    if "spark_jar_task" in spec:
        return list(overrides.get("jar_params") or spec["spark_jar_task"].get("parameters", []))
    if "spark_submit_task" in spec:
        return list(overrides.get("spark_submit_params") or spec["spark_submit_task"].get("parameters", []))
    if "sql_task" in spec:
        return {**spec["sql_task"].get("parameters", {}), **overrides.get("sql_params", {})}
    if "dbt_task" in spec:
        return list(overrides.get("dbt_commands") or spec["dbt_task"].get("commands", []))
    return None


def legacy_overrides(body: dict[str, Any]) -> dict[str, Any]:
    """The legacy parameter fields of a run-now or repair body, checked for their types."""
    out = {}
    for name in LEGACY_PARAMS:
        value = body.get(name)
        if value is None:
            continue
        wants_map = name in ("notebook_params", "python_named_params", "sql_params", "pipeline_params")
        if wants_map and not isinstance(value, dict) or not wants_map and not isinstance(value, list):
            raise invalid(f"Invalid value for {name}: expected {'an object' if wants_map else 'an array'}.")
        out[name] = copy.deepcopy(value)
    return out


def _inputs(raw: Any) -> list[Any]:
    # `inputs` is a JSON array given as a string (or a task-value reference, which is not simulated).
    try:
        values = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError as exc:
        raise invalid(f"for_each_task.inputs is not a JSON array: {raw!r}") from exc
    if not isinstance(values, list):
        raise invalid(f"for_each_task.inputs is not a JSON array: {raw!r}")
    return values


def _with_input(inner: dict[str, Any], value: Any) -> dict[str, Any]:
    text = json.dumps(copy.deepcopy(inner)).replace("{{input}}", str(value).replace('"', '\\"'))
    return json.loads(text)


def _iteration_plan(planned: Any, number: int) -> Any:
    if isinstance(planned, ForEachFailure):
        return planned.iterations.get(number, "success")
    return planned if isinstance(planned, TaskFailure) else "success"
