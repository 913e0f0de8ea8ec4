"""Read what went wrong in a failed run and classify it: one classification per failed task, one for the run.

The webhook says nothing but ids, so this is where the evidence comes from: each failed task's
`runs/get-output` error and trace, its state message, and, for cluster trouble, the cluster's termination
reason. Two task kinds keep their error elsewhere (databricks-sdk-py service/jobs.py, reference §9):
- a for_each task: in its failed iterations (`runs/get` of the task run: `iterations[]`, each a task run with
  its own output), summed up in `for_each_task.stats.error_message_stats`;
- a run_job task: in the run it started (`get-output` → `run_job_output.run_id`), read like any job run.
The text handed to the classifier puts the line that names the cause first; Databricks' generic placeholders
("Workload failed, see run output for details") are dropped whenever anything better exists.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.classify import Classification, FailureSignals
from shared.databricks.api import JobsApi
from shared.databricks.models import UPSTREAM_RESULT_STATES, Run, RunOutput, RunTask
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
MAX_ITERATIONS_READ = 3  # failed for_each iterations whose output is read (the rest are counted)
_MAX_CHILD_DEPTH = 2  # run_job inside run_job: follow this far, no further

# Databricks' generic lines, which say that something failed but never what (reference §7, §9). They never
# lead the subject, the evidence or the excerpt; wrappers around them are unwrapped first.
PLACEHOLDERS = (
    re.compile(r"(?i)^\W*(?:workload failed,?\s*)?see (?:the )?run output for details\W*$"),
    re.compile(r"(?i)^\W*workload failed\W*$"),
    re.compile(r"(?i)^\W*(?:run|task) failed\W*$"),
    re.compile(r"(?i)^\W*\[?RUN_EXECUTION_ERROR\]?\W*(?:workload failed,?\s*)?(?:see (?:the )?run output for details)?\W*$"),
)
_WRAPPERS = (
    re.compile(r"(?is)^\s*Task \S+ failed with message:\s*(?P<inner>.*?)\s*(?:\.?\s*This caused all downstream tasks to get skipped\.?)?\s*$"),
    re.compile(r"(?is)^\s*Run result unavailable: job failed with error message\s*(?P<inner>.*?)\s*$"),
)


def is_placeholder(text: str | None) -> bool:
    """True for a message that only says the run failed (after unwrapping 'Task x failed with message: …')."""
    inner = (text or "").strip()
    for _ in range(3):
        for wrapper in _WRAPPERS:
            match = wrapper.match(inner)
            if match:
                inner = match.group("inner").strip()
                break
        else:
            break
    return not inner or any(p.match(inner) for p in PLACEHOLDERS)


@dataclass(frozen=True)
class Diagnosis:
    """The run's classification (the one that decides) and what each failed task looked like."""

    classification: Classification
    signals: FailureSignals
    failed_tasks: list[FailedTask]


@dataclass
class _Evidence:
    """What one failed task's error is, and where it was found."""

    causes: list[str] = field(default_factory=list)  # the lines that name the cause, best first
    context: list[str] = field(default_factory=list)  # state messages, iteration counts: after the causes
    reason_code: str | None = None
    reason_type: str | None = None
    linked_run_id: int | None = None
    linked_run_url: str | None = None
    iterations_failed: int | None = None

    def text(self, fallback: str) -> str:
        lines = [p for p in self.causes if p and not is_placeholder(p)]
        lines += [p for p in self.context if p and not is_placeholder(p) and p not in lines]
        return "\n".join(lines) if lines else fallback


def diagnose(run: Run, api: JobsApi, classify: Classifier) -> Diagnosis:
    """Classify every failed task of `run`; the run's category follows _PRECEDENCE."""
    tasks = run.failed_tasks()
    results: list[tuple[FailedTask, FailureSignals, Classification]] = []
    for task in tasks:
        signals, evidence = _task_signals(run, task, api, depth=0)
        classification = classify(signals)
        failed = FailedTask(
            task_key=task.task_key,
            run_id=task.run_id,
            result_state=task.state.result_state,
            error=_first_line(signals.text),
            run_page_url=task.run_page_url,
            compute=task.compute,
            compute_detail=task.compute_detail,
            job_cluster_key=task.cluster_key,
            category=classification.category,
            linked_run_id=evidence.linked_run_id,
            linked_run_url=evidence.linked_run_url,
            iterations_failed=evidence.iterations_failed,
        )
        results.append((failed, signals, classification))
    if not results:
        # Failed before any task ran (cluster launch, queue full, config): the run itself carries the reason.
        evidence = _Evidence(causes=[run.termination.message or ""], context=[run.state.state_message or ""])
        signals = FailureSignals(
            text=evidence.text(_no_text(f"run {run.run_id}", run.state.result_state)),
            result_state=run.state.result_state,
            life_cycle_state=run.state.life_cycle_state,
            termination_code=run.termination.code,
            termination_type=run.termination.type,
        )
        return Diagnosis(classify(signals), signals, [])
    _, signals, decisive = min(results, key=lambda r: _PRECEDENCE.index(r[2].category))
    return Diagnosis(decisive, signals, [r[0] for r in results])


def _task_signals(run: Run, task: RunTask, api: JobsApi, *, depth: int) -> tuple[FailureSignals, _Evidence]:
    termination = (task.status.termination_details if task.status else None) or run.termination
    if task.for_each_task is not None:
        evidence = _for_each_evidence(task, api)
    else:
        output = _output(api, task)
        if task.run_job_task is not None and output.child_run_id is not None and depth < _MAX_CHILD_DEPTH:
            evidence = _child_run_evidence(output.child_run_id, api, depth)
        else:
            evidence = _Evidence(causes=[output.error or "", _trim(output.error_trace) or ""])
        cluster_id = task.cluster_instance.cluster_id if task.cluster_instance else None
        if cluster_id and (termination.code in _CLUSTER_CODES or not output.error):
            evidence.reason_code, evidence.reason_type, reason_text = _cluster_reason(api, cluster_id)
            if reason_text and termination.code in _CLUSTER_CODES:
                evidence.causes.insert(0, reason_text)  # the cluster ended the task: that is the cause
            elif reason_text:
                evidence.context.append(reason_text)
    evidence.context.insert(0, task.state.state_message or "")
    if not evidence.causes or all(is_placeholder(c) for c in evidence.causes):
        evidence.context.append(run.state.state_message or "")
    text = evidence.text(_no_text(f"task {task.task_key}", task.state.result_state))
    return FailureSignals(
        text=text,
        # A run that hit its timeout shows its cut-off tasks as CANCELED: the run's TIMEDOUT is the truth.
        result_state="TIMEDOUT" if run.state.result_state == "TIMEDOUT" else task.state.result_state or run.state.result_state,
        life_cycle_state=task.state.life_cycle_state,
        termination_code=termination.code,
        termination_type=termination.type,
        cluster_reason_code=evidence.reason_code,
        cluster_reason_type=evidence.reason_type,
    ), evidence


def _for_each_evidence(task: RunTask, api: JobsApi) -> _Evidence:
    """The failed iterations' own errors (the parent's get-output has none), then the stats' common errors."""
    evidence = _Evidence()
    try:
        iterations = api.get_run(task.run_id).iterations
    except PermanentError as exc:
        log.warning("for_each iterations not readable", extra={"task_key": task.task_key, "error": str(exc)})
        iterations = []
    failed = [i for i in iterations if i.failed and i.state.result_state not in UPSTREAM_RESULT_STATES]
    evidence.iterations_failed = len(failed) or None
    for iteration in failed[:MAX_ITERATIONS_READ]:
        output = _output(api, iteration)
        evidence.causes += [output.error or "", _trim(output.error_trace) or ""]
        if not output.error and iteration.state.state_message:
            evidence.causes.append(iteration.state.state_message)
        cluster_id = iteration.cluster_instance.cluster_id if iteration.cluster_instance else None
        if cluster_id and not output.error and evidence.reason_code is None:
            evidence.reason_code, evidence.reason_type, reason_text = _cluster_reason(api, cluster_id)
            evidence.causes.append(reason_text or "")
    evidence.causes += task.error_message_stats  # Databricks' sample of the most common iteration errors
    if failed:
        evidence.context.append(f"{len(failed)} of {len(iterations)} iterations of for_each task "
                                f"'{task.task_key}' failed")
    return evidence


def _child_run_evidence(child_run_id: int, api: JobsApi, depth: int) -> _Evidence:
    """The error of the run a run_job task started: its own failed tasks, read as any run's."""
    try:
        child = api.get_run(child_run_id)
    except PermanentError as exc:
        log.warning("run_job child run not readable", extra={"run_id": child_run_id, "error": str(exc)})
        return _Evidence(linked_run_id=child_run_id)
    evidence = _Evidence(linked_run_id=child.run_id, linked_run_url=child.run_page_url)
    for task in child.failed_tasks()[:MAX_ITERATIONS_READ]:
        signals, inner = _task_signals(child, task, api, depth=depth + 1)
        evidence.causes.append(signals.text)
        evidence.reason_code = evidence.reason_code or inner.reason_code
        evidence.reason_type = evidence.reason_type or inner.reason_type
    if not evidence.causes:
        evidence.causes.append(child.termination.message or child.state.state_message or "")
    evidence.context.append(f"in run {child.run_id} of job {child.job_id}, started by this run_job task")
    return evidence


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


def _no_text(what: str, result_state: str | None) -> str:
    # Said plainly rather than quoting Databricks' placeholder, which would read like a cause.
    return f"{what} ended {result_state or 'FAILED'}; Databricks gave no error text for it in the run output"


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
