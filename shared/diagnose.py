"""Read what went wrong in a failed run and classify it: one classification per failed task, one for the run.

The webhook says nothing but ids, so this is where the evidence comes from: each failed task's state
message, `runs/get-output` error and trace, and, for cluster trouble, the cluster's termination reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from shared.classify import Classification, FailureSignals
from shared.databricks.api import JobsApi
from shared.databricks.models import Run, RunOutput, RunTask
from shared.decision import FailedTask
from shared.exceptions import PermanentError
from shared.taxonomy import Category

log = logging.getLogger(__name__)

Classifier = Callable[[FailureSignals], Classification]

# The category whose action wins when tasks of one run fail differently: anything a retry cannot fix comes
# first (never rerun a permission error because a sibling task had a network blip), then resource, then the
# transient ones; a cancellation decides only when nothing else failed.
_PRECEDENCE = [
    Category.PERMISSION, Category.QUOTA, Category.CODE, Category.DATA, Category.UNKNOWN, Category.RESOURCE,
    Category.TIMEOUT, Category.INFRASTRUCTURE, Category.NETWORK, Category.THROTTLING, Category.CONCURRENCY,
    Category.CANCELLED,
]
# Termination codes that point at the cluster rather than the code: worth a clusters/get.
_CLUSTER_CODES = frozenset({"CLUSTER_ERROR", "DRIVER_ERROR", "CLOUD_FAILURE", "INTERNAL_ERROR",
                            "CLUSTER_REQUEST_LIMIT_EXCEEDED", "CLUSTER_TERMINATED_BY_USER"})
_MAX_TRACE_CHARS = 200_000  # get-output can return 5 MB; the classifier looks at head and tail anyway


@dataclass(frozen=True)
class Diagnosis:
    """The run's classification (the one that decides) and what each failed task looked like."""

    classification: Classification
    signals: FailureSignals
    failed_tasks: list[FailedTask]


def diagnose(run: Run, api: JobsApi, classify: Classifier) -> Diagnosis:
    """Classify every failed task of `run`; the run's category follows _PRECEDENCE."""
    tasks = run.failed_tasks()
    results: list[tuple[FailedTask, FailureSignals, Classification]] = []
    for task in tasks:
        signals = _task_signals(run, task, api)
        classification = classify(signals)
        failed = FailedTask(
            task_key=task.task_key,
            run_id=task.run_id,
            result_state=task.state.result_state,
            error=_first_line(signals.text),
            run_page_url=task.run_page_url,
            compute=task.compute,
            job_cluster_key=task.job_cluster_key,
            category=classification.category,
        )
        results.append((failed, signals, classification))
    if not results:
        # Failed before any task ran (cluster launch, queue full, config): the run itself carries the reason.
        signals = FailureSignals(
            text=run.state.state_message or run.termination.message or "",
            result_state=run.state.result_state,
            life_cycle_state=run.state.life_cycle_state,
            termination_code=run.termination.code,
            termination_type=run.termination.type,
        )
        return Diagnosis(classify(signals), signals, [])
    _, signals, decisive = min(results, key=lambda r: _PRECEDENCE.index(r[2].category))
    return Diagnosis(decisive, signals, [r[0] for r in results])


def _task_signals(run: Run, task: RunTask, api: JobsApi) -> FailureSignals:
    output = _output(api, task)
    termination = (task.status.termination_details if task.status else None) or run.termination
    parts = [task.state.state_message, output.error, _trim(output.error_trace)]
    if not output.error and not output.error_trace:
        parts.append(run.state.state_message)
    reason_code = reason_type = None
    cluster_id = task.cluster_instance.cluster_id if task.cluster_instance else None
    if cluster_id and (termination.code in _CLUSTER_CODES or not output.error):
        reason_code, reason_type, reason_text = _cluster_reason(api, cluster_id)
        parts.append(reason_text)
    text = "\n".join(p for p in parts if p)
    return FailureSignals(
        text=text,
        # A run that hit its timeout shows its cut-off tasks as CANCELED: the run's TIMEDOUT is the truth.
        result_state="TIMEDOUT" if run.state.result_state == "TIMEDOUT" else task.state.result_state or run.state.result_state,
        life_cycle_state=task.state.life_cycle_state,
        termination_code=termination.code,
        termination_type=termination.type,
        cluster_reason_code=reason_code,
        cluster_reason_type=reason_type,
    )


def _output(api: JobsApi, task: RunTask) -> RunOutput:
    try:
        return api.get_run_output(task.run_id)
    except PermanentError as exc:
        # An output that cannot be read (deleted run, unsupported task type) is not a reason to stop deciding.
        log.warning("no run output for task", extra={"task_key": task.task_key, "run_id": task.run_id, "error": str(exc)})
        return RunOutput()


def _cluster_reason(api: JobsApi, cluster_id: str) -> tuple[str | None, str | None, str | None]:
    try:
        cluster = api.get_cluster(cluster_id)
    except PermanentError as exc:
        log.warning("cluster not readable", extra={"cluster_id": cluster_id, "error": str(exc)})
        return None, None, None
    reason = cluster.termination_reason
    if reason is None or not reason.code:
        return None, None, None
    params = ",".join(f"{k}:{v}" for k, v in sorted(reason.parameters.items()))
    return reason.code, reason.type, f"Cluster terminated: {reason.code}({reason.type}): {params}".rstrip(": ")


def _trim(trace: str | None) -> str | None:
    if not trace or len(trace) <= _MAX_TRACE_CHARS:
        return trace
    half = _MAX_TRACE_CHARS // 2
    return trace[:half] + "\n…[trace trimmed]…\n" + trace[-half:]


def _first_line(text: str) -> str | None:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:500]
    return None
