"""Doing what was decided, in Databricks: repair the run, resize a job cluster then repair, or nothing.

Exactly once, by construction: the pipeline records an `Intent` before anything is sent; `act` then first
reads Databricks back and recognises what already happened (a REPAIR item after the intent's base in the
run's repair history; the job cluster already showing the intended values), and sends only what did not.
An ambiguous answer (timeout, 5xx, lost connection) is settled the same way: re-read, never re-send.

A resize is a patch of named fields (resize.field_changes); its revert is the inverse patch, applied to the
live spec read at revert time, and only to fields that still show the agent's values. Nothing read from the
decision store's masked copy is ever written to Databricks.

In observe mode every function here only says what it would have done.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.databricks.api import JobsApi
from shared.databricks.models import Run
from shared.decision import FieldChange, Intent, Outcome, ResizeChange
from shared.exceptions import PermanentError, TransientError
from shared.resize import field_changes, patched, showing, spec_hash
from shared.taxonomy import Action

log = logging.getLogger(__name__)

_MASKED = "***"


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
    changes: tuple[FieldChange, ...] = ()  # the inverse patch, when it reaches further back than `before`
    step: tuple[FieldChange, ...] = ()  # this resize's own patch, when `before` is a chain's original spec

    def field_changes(self) -> list[FieldChange]:
        return list(self.changes) or field_changes(self.before, self.after)

    def step_changes(self) -> list[FieldChange]:
        return list(self.step) or field_changes(self.before, self.after)


def idempotency_token(workspace_key: str, run_id: int, repair_count: int) -> str:
    """Deterministic per failed attempt: a redelivered message dedupes, a new attempt does not (<= 64 chars)."""
    digest = hashlib.sha256(f"{workspace_key}:{run_id}:{repair_count}".encode()).hexdigest()[:40]
    return f"ai-agent-{digest}"


def plan_intent(action: Action | None, run: Run, *, workspace_key: str, resize: ResizeRequest | None = None,
                now: datetime | None = None) -> Intent | None:
    """The intent to record before acting: what will be sent, and the base it is recognised against."""
    if action not in (Action.RETRY, Action.RETRY_WITH_NEW_PARAMS):
        return None
    change = None
    if action is Action.RETRY_WITH_NEW_PARAMS:
        if resize is None:
            raise PermanentError("RETRY_WITH_NEW_PARAMS without a resize plan")
        change = ResizeChange(job_cluster_key=resize.job_cluster_key, before=resize.before, after=resize.after,
                              summary=resize.summary, changes=resize.field_changes())
    return Intent(
        kind="resize_repair" if change else "repair", run_id=run.run_id, job_id=run.job_id,
        base_repair_count=run.repair_count, base_latest_repair_id=run.latest_repair_id, resize=change,
        step=resize.step_changes() if resize is not None and change is not None else [],
        token=idempotency_token(workspace_key, run.run_id, run.repair_count), recorded_at=now,
    )


def act(action: Action | None, intent: Intent | None, api: JobsApi, *, observe: bool) -> ActionResult:
    """Carry out `action` as `intent` describes, sending only what Databricks does not show done already.

    Raises the client's errors: TransientError retries the message (the intent stays on record, so the next
    delivery recognises what happened); PermanentError is a refusal (a resize made for it is put back first).
    """
    if action is Action.ESCALATE:
        return ActionResult("escalated to the on-call list; nothing changed in Databricks")
    if action is Action.SEND_EMAIL:
        return ActionResult("emailed the job's owners; nothing changed in Databricks")
    if action not in (Action.RETRY, Action.RETRY_WITH_NEW_PARAMS):
        return ActionResult("nothing")
    if intent is None:
        raise PermanentError(f"{action.value} without a recorded intent")
    if observe:
        if intent.resize is not None:
            return ActionResult(
                f"observe mode: would have resized job cluster '{intent.resize.job_cluster_key}' "
                f"({intent.resize.summary}) and repaired run {intent.run_id}", resize=intent.resize)
        return ActionResult(f"observe mode: would have repaired run {intent.run_id} (rerun of the failed tasks)")
    change = ensure_resized(api, intent) if intent.resize is not None else None
    try:
        result = ensure_rerun(api, intent)
    except PermanentError:
        if change is not None:
            # The rerun was refused: put the job back as it was so the resize does not linger unnoticed.
            _revert_quietly(api, intent.job_id, change)
        raise
    if change is not None:
        result.resize = change
        result.done = f"resized job cluster '{change.job_cluster_key}' ({change.summary}); {result.done}"
    return result


def ensure_resized(api: JobsApi, intent: Intent) -> ResizeChange:
    """The job cluster showing the intended values: written once, from the live spec, only if it still shows
    the values the decision was planned on; recognised if it shows the intended ones already."""
    change = intent.resize
    assert change is not None and intent.job_id is not None
    live = api.get_job(intent.job_id).job_cluster(change.job_cluster_key)
    if live is None:
        raise PermanentError(f"job cluster '{change.job_cluster_key}' is not in the job's settings any more")
    step = intent.step or change.changes
    fields = {c.field for c in step}
    if showing(live, step, "after") == fields:
        target = live  # written before (its answer lost, or the worker stopped right after): not again
        log.info("resize recognised: the job cluster shows it already", extra={"job_id": intent.job_id})
    elif showing(live, step, "before") == fields:
        target = patched(live, step, "after")
        _write_and_confirm(api, intent.job_id, change.job_cluster_key, target, step, "after")
    else:
        raise PermanentError(f"job cluster '{change.job_cluster_key}' was changed by someone else since the "
                             "decision, so the agent did not resize it")
    return change.model_copy(update={"after": target, "after_hash": spec_hash(target)})


def ensure_rerun(api: JobsApi, intent: Intent) -> ActionResult:
    """Repair the failed tasks unless the run's history shows a repair after the intent's base already;
    fall back to run-now (idempotent by token) where the run cannot be repaired."""
    current = api.get_run(intent.run_id)
    found = recognised(current, intent)
    if found is not None:
        return found
    if not current.terminal:
        raise TransientError(f"run {intent.run_id} is {current.state.life_cycle_state}; looking again later")
    params = current.repair_parameters()  # job_parameters, or the legacy kinds the run was started with
    try:
        # latest_repair_id is the base the decision saw: should anyone repair in between, Databricks refuses.
        repair_id = api.repair_run(intent.run_id, latest_repair_id=intent.base_latest_repair_id, **params)
        return ActionResult(f"repaired run {intent.run_id} (repair {repair_id})", outcome="pending",
                            repair_id=repair_id)
    except TransientError:
        # A timeout or 5xx may hide a repair Databricks did start (the client never re-sends a repair).
        found = recognised(api.get_run(intent.run_id), intent)
        if found is None:
            raise
        return found
    except PermanentError as exc:
        found = recognised(api.get_run(intent.run_id), intent)
        if found is not None:
            return found
        if getattr(exc, "error_code", None) != "INVALID_STATE" or intent.job_id is None:
            raise
        log.warning("run cannot be repaired, starting a new run instead", extra={"run_id": intent.run_id,
                                                                                 "error": str(exc)})
    assert intent.token is not None
    # The token makes Databricks answer a repeated run-now with the run it started the first time.
    new_run_id = api.run_now(intent.job_id, idempotency_token=intent.token, **params)
    return ActionResult(
        f"started a new run {new_run_id} of job {intent.job_id} (run {intent.run_id} could not be repaired)",
        outcome="pending", new_run_id=new_run_id, rerun_links=[new_run_id],
    )


def recognised(current: Run, intent: Intent) -> ActionResult | None:
    """The repair that followed the intent's base in the run's history, if there is one."""
    repairs = [item for item in current.repair_history if item.type == "REPAIR"]
    if len(repairs) <= intent.base_repair_count:
        return None
    item = repairs[intent.base_repair_count]
    return ActionResult(f"repaired run {intent.run_id} (repair {item.id}, recognised in the run's repair history)",
                        outcome="pending", repair_id=item.id)


def revert_resize(api: JobsApi, job_id: int, change: ResizeChange, current: dict[str, Any] | None = None) -> str:
    """The inverse patch: put back the fields the resize changed, on the live spec read now, if Databricks still
    shows the agent's value in every one of them; if someone changed any since, leave it all and say so."""
    if current is None:
        current = api.get_job(job_id).job_cluster(change.job_cluster_key)
    name = f"job cluster '{change.job_cluster_key}'"
    if current is None:
        return f"kept {name} as it is: it is not in the job's settings any more"
    changes = [c for c in (change.changes or field_changes(change.before, change.after))
               if _MASKED not in (str(c.before), str(c.after))]  # a record older than the inverse patch
    fields = {c.field for c in changes}
    if fields and showing(current, changes, "after") == fields:
        _write_and_confirm(api, job_id, change.job_cluster_key, patched(current, changes, "before"), changes, "before")
        return f"reverted {name} to its original size"
    if fields and showing(current, changes, "before") == fields:
        return f"reverted {name} to its original size (it showed it already)"
    return f"kept {name} as it is: it was changed by someone else after the resize"


def _write_and_confirm(api: JobsApi, job_id: int, key: str, spec: dict[str, Any], changes: list[FieldChange],
                       side: str) -> None:
    """jobs/update once; after an unclear answer, read the cluster back to learn whether it took effect."""
    try:
        api.update_job_cluster(job_id, key, spec)
    except TransientError:
        live = api.get_job(job_id).job_cluster(key)
        if showing(live, changes, side) != {c.field for c in changes}:  # type: ignore[arg-type]
            raise
        log.info("jobs/update recognised after an unclear answer", extra={"job_id": job_id})


def _revert_quietly(api: JobsApi, job_id: int | None, change: ResizeChange) -> None:
    try:
        if job_id is not None:
            revert_resize(api, job_id, change)
    except Exception:  # noqa: BLE001 - the original error matters more; this one is logged
        log.exception("could not revert the resize after a refused rerun", extra={"job_id": job_id})
