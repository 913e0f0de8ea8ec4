"""Doing what was decided, in Databricks: repair the run, resize a job cluster then repair, or nothing.

In observe mode every function here only says what it would have done.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

from shared.databricks.api import JobsApi
from shared.databricks.models import Run
from shared.decision import Outcome, ResizeChange
from shared.exceptions import PermanentError, TransientError
from shared.taxonomy import Action

log = logging.getLogger(__name__)


@dataclass
class ActionResult:
    """What was done, for the record and the email."""

    done: str
    outcome: Outcome = "not_applicable"
    repair_id: int | None = None
    new_run_id: int | None = None
    resize: ResizeChange | None = None
    rerun_links: list[int] = field(default_factory=list)  # run ids started by run-now, to link to the chain


@dataclass(frozen=True)
class ResizeRequest:
    """The job cluster to change and its new spec (planned before the decision, applied here)."""

    job_id: int
    job_cluster_key: str
    before: dict[str, Any]
    after: dict[str, Any]
    summary: str


def idempotency_token(workspace_key: str, run_id: int, repair_count: int) -> str:
    """Deterministic per failed attempt: a redelivered message dedupes, a new attempt does not (<= 64 chars)."""
    digest = hashlib.sha256(f"{workspace_key}:{run_id}:{repair_count}".encode()).hexdigest()[:40]
    return f"ai-agent-{digest}"


def act(
    action: Action,
    run: Run,
    api: JobsApi,
    *,
    workspace_key: str,
    observe: bool,
    resize: ResizeRequest | None = None,
) -> ActionResult:
    """Carry out `action` for the failed `run`; raises the client's errors (transient ones retry the message)."""
    if action is Action.RETRY:
        if observe:
            return ActionResult(f"observe mode: would have repaired run {run.run_id} (rerun of the failed tasks)")
        return _rerun(run, api, workspace_key)
    if action is Action.RETRY_WITH_NEW_PARAMS:
        if resize is None:
            raise PermanentError("RETRY_WITH_NEW_PARAMS without a resize plan")
        change = ResizeChange(
            job_cluster_key=resize.job_cluster_key, before=resize.before, after=resize.after, summary=resize.summary
        )
        if observe:
            return ActionResult(
                f"observe mode: would have resized job cluster '{resize.job_cluster_key}' ({resize.summary}) "
                f"and repaired run {run.run_id}",
                resize=change,
            )
        api.update_job_cluster(resize.job_id, resize.job_cluster_key, resize.after)
        try:
            result = _rerun(run, api, workspace_key)
        except Exception:
            # The rerun did not start: put the job back as it was so the resize does not linger unnoticed.
            _revert_quietly(api, resize)
            raise
        result.resize = change
        result.done = f"resized job cluster '{resize.job_cluster_key}' ({resize.summary}); {result.done}"
        return result
    if action is Action.ESCALATE:
        return ActionResult("escalated to the on-call list; nothing changed in Databricks")
    if action is Action.SEND_EMAIL:
        return ActionResult("emailed the job's owners; nothing changed in Databricks")
    return ActionResult("nothing")


def _rerun(run: Run, api: JobsApi, workspace_key: str) -> ActionResult:
    """Repair the failed tasks; fall back to run-now (idempotent) where the run cannot be repaired."""
    params = run.repair_parameters()  # job_parameters, or the legacy kinds the run was started with
    try:
        repair_id = api.repair_run(run.run_id, latest_repair_id=run.latest_repair_id, **params)
        return ActionResult(f"repaired run {run.run_id} (repair {repair_id})", outcome="pending", repair_id=repair_id)
    except TransientError:
        # A timeout or 5xx may hide a repair Databricks did start (the client never re-sends a repair).
        started = _repair_started(api, run)
        if started is None:
            raise
        return started
    except PermanentError as exc:
        if getattr(exc, "error_code", None) != "INVALID_STATE" or run.job_id is None:
            raise
        # INVALID_STATE also means "in progress": a repair sent before (its answer lost to a timeout) may be
        # running. Only a run that is still terminal really cannot be repaired.
        started = _repair_started(api, run)
        if started is not None:
            return started
        log.warning("run cannot be repaired, starting a new run instead", extra={"run_id": run.run_id, "error": str(exc)})
    token = idempotency_token(workspace_key, run.run_id, run.repair_count)
    new_run_id = api.run_now(run.job_id, idempotency_token=token, **params)
    return ActionResult(
        f"started a new run {new_run_id} of job {run.job_id} (run {run.run_id} could not be repaired)",
        outcome="pending",
        new_run_id=new_run_id,
        rerun_links=[new_run_id],
    )


def _repair_started(api: JobsApi, run: Run) -> ActionResult | None:
    """If the run was repaired since `run` was read (our answer lost on the way), that repair's result."""
    current = api.get_run(run.run_id)
    if current.terminal and current.repair_count <= run.repair_count:
        return None
    return ActionResult(f"repaired run {run.run_id} (repair {current.latest_repair_id}; its answer was lost on the way)",
                        outcome="pending", repair_id=current.latest_repair_id)


def revert_resize(api: JobsApi, job_id: int, change: ResizeChange, current: dict[str, Any] | None) -> str:
    """Put a resized job cluster back, unless someone changed it since (then leave it and say so)."""
    if current is not None and current != change.after:
        return (
            f"kept job cluster '{change.job_cluster_key}' as it is: it was changed by someone else after the resize"
        )
    api.update_job_cluster(job_id, change.job_cluster_key, change.before)
    return f"reverted job cluster '{change.job_cluster_key}' to its original size"


def _revert_quietly(api: JobsApi, resize: ResizeRequest) -> None:
    try:
        api.update_job_cluster(resize.job_id, resize.job_cluster_key, resize.before)
    except Exception:  # noqa: BLE001 - the original error matters more; this one is logged
        log.exception("could not revert the resize after a failed rerun", extra={"job_id": resize.job_id})
