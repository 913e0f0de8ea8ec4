"""The timer's job: catch failures no webhook reported, and follow the reruns the agent started.

1. `runs/list?completed_only=true` since a checkpoint (minus an overlap window, since runs can finish out of
   order), enqueueing failed runs with no decision yet. The pipeline's claim makes a run announced by both the
   webhook and the poller produce one decision.
2. For each decision whose rerun is pending: record how it ended, revert a resize once its rerun is over,
   email how a resized rerun ended (which size worked, whether it was reverted), and enqueue the rerun's
   failure if no webhook announced it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone

from shared import actions
from shared.databricks.api import JobsApi
from shared.databricks.models import SUCCEEDED_RESULT_STATES, Job, Run, RunSummary
from shared.decision import DecisionRecord
from shared.events import FailureEvent
from shared.exceptions import AgentError
from shared.notify.kinds import outcome_kind
from shared.pipeline import PipelineDeps, read_job
from shared.store import as_utc
from shared.workspaces import workspace_id_of, workspace_key

log = logging.getLogger(__name__)

_POLLED_FAILURES = frozenset({"FAILED", "TIMEDOUT"})  # user cancellations are not worth a record of their own


@dataclass
class PollReport:
    """What one timer tick did, per workspace."""

    enqueued: list[int] = field(default_factory=list)
    followed: list[str] = field(default_factory=list)
    reverted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def poll(deps: PipelineDeps, now: datetime | None = None) -> PollReport:
    """One timer tick over every configured workspace. Errors in one workspace do not stop the others."""
    now = now or deps.clock()
    report = PollReport()
    for workspace in deps.settings.workspaces():
        ws = workspace_key(workspace)
        try:
            _poll_workspace(deps, workspace.workspace_id, ws, now, report)
        except AgentError as exc:
            log.error("poll failed for workspace %s: %s", ws, exc)
            report.errors.append(f"{ws}: {exc}")
    _follow_up(deps, report)
    if deps.learning is not None:  # verdicts that waited for the decision on a rerun's failure
        _judge_awaiting(deps, now, report)
    flush = getattr(deps.notifier, "flush", None)
    if callable(flush):
        flush(now)
    return report


def _poll_workspace(deps: PipelineDeps, workspace_id: str | None, ws: str, now: datetime, report: PollReport) -> None:
    settings = deps.settings
    api = deps.jobs_api(workspace_id)
    checkpoint = deps.state.get("checkpoint", ws)
    now_ms = int(now.timestamp() * 1000)
    ended_after = int(checkpoint["until_ms"]) if checkpoint else now_ms - settings.poll_lookback_minutes * 60_000
    ended_after -= settings.poll_overlap_minutes * 60_000
    # runs/list filters on start time: a six-hour run that failed a minute ago started long before the
    # checkpoint. Look back by the longest run, then keep the runs that ended inside the window.
    started_after = ended_after - settings.poll_max_run_hours * 3_600_000
    for summary in api.list_runs(start_time_from=started_after, completed_only=True):
        if summary.end_time and summary.end_time < ended_after:
            continue
        failed = summary.state.result_state in _POLLED_FAILURES or summary.state.life_cycle_state == "INTERNAL_ERROR"
        if not failed or summary.run_type not in (None, "JOB_RUN") or _decided_since(deps, ws, summary):
            continue
        deps.enqueue(FailureEvent(workspace_id=workspace_id, job_id=summary.job_id, run_id=summary.run_id,
                                  job_name=summary.run_name, source="poller"), 0)
        report.enqueued.append(summary.run_id)
    deps.state.put("checkpoint", ws, {"until_ms": now_ms})


def _decided_since(deps: PipelineDeps, ws: str, summary: RunSummary) -> bool:
    """A decision on this run was made after it last ended (a run repaired and failed again was not)."""
    first = deps.store.get(f"{ws}:{summary.run_id}:0")
    if first is None:
        return False
    ended = datetime.fromtimestamp((summary.end_time or 0) / 1000, tz=timezone.utc)
    return as_utc(first.received_at) >= ended or summary.end_time is None


def _follow_up(deps: PipelineDeps, report: PollReport) -> None:
    for record in deps.store.pending_outcomes():
        try:
            _follow_one(deps, record, report)
        except AgentError as exc:
            report.errors.append(f"{record.key}: {exc}")


def _judge_awaiting(deps: PipelineDeps, now: datetime, report: PollReport) -> None:
    try:
        report.followed += deps.learning.judge_awaiting(deps.store, now)
    except AgentError as exc:
        report.errors.append(f"outcome verdicts: {exc}")


def _follow_one(deps: PipelineDeps, record: DecisionRecord, report: PollReport) -> None:
    workspace_id = workspace_id_of(record.workspace_id)
    api = deps.jobs_api(workspace_id)
    run = api.get_run(record.new_run_id or record.run_id)
    if not run.terminal:
        return
    succeeded = _rerun_succeeded(run, record.repair_id if record.new_run_id is None else None)
    record.outcome = "succeeded" if succeeded else "failed"
    if deps.learning is not None:  # confirms or refutes the decision (and the learned rule behind it)
        deps.learning.rerun_ended(deps.store, record, run, succeeded, deps.clock())
    # Only a rerun that worked ends the chain here. One that failed again is the chain's next attempt: its
    # decision builds on the larger cluster, and puts the original back when the chain ends (pipeline).
    job: Job | None = None  # read once: for the revert, and for the outcome email's recipients
    if (succeeded and record.resize and not record.resize.reverted and record.resize.kept is None
            and deps.settings.resize_revert and record.job_id is not None):
        job = api.get_job(record.job_id)
        current = job.job_cluster(record.resize.job_cluster_key)
        note = actions.revert_resize(api, record.job_id, record.resize, current)
        record.resize.reverted = note.startswith("reverted")
        record.done += f"; {note}"
        report.reverted.append(record.key)
    _note_why_kept(record, succeeded, deps.settings.resize_revert)
    if not succeeded:
        # Before the save: if enqueueing fails, the record stays pending and the next tick tries again.
        _enqueue_if_unannounced(deps, record, run)
    _email_outcome(deps, api, record, job)
    deps.store.save(record)
    report.followed.append(record.key)
    log.info("rerun ended %s", record.outcome, extra={"key": record.key, "run_id": run.run_id})


def _note_why_kept(record: DecisionRecord, succeeded: bool, revert: bool) -> None:
    """Record why a resize is still in place after its rerun ended (the outcome email says so)."""
    resize = record.resize
    if resize is None or resize.reverted or resize.kept is not None:
        return
    if not revert:
        resize.kept = "setting"
    elif succeeded:
        resize.kept = "changed"  # revert_resize left it: someone edited the job cluster after the resize


def _email_outcome(deps: PipelineDeps, api: JobsApi, record: DecisionRecord, job: Job | None) -> None:
    """Tell the job's people how the rerun of a resize ended; a plain rerun's end needs no email.

    A job whose tag turns the agent off gets none (as in the pipeline). The revert is saved first, outcome still
    pending: should the outbox be unreachable (TransientError), the next tick emails without reverting again,
    which would find the original size and take it for someone else's change.
    """
    kind = outcome_kind(record) if record.agent_enabled else None
    if kind is None:
        return
    deps.store.save(record.model_copy(update={"outcome": "pending"}))
    if job is None:
        job = read_job(api, record.job_id)
    sent = deps.notifier.notify(record, job, kind=kind)
    record.notifications += [nid for nid in sent if nid not in record.notifications]


def _rerun_succeeded(run: Run, repair_id: int | None) -> bool:
    """How this repair ended (its repair_history item), else how the run ended."""
    for item in run.repair_history:
        if repair_id is not None and item.id == repair_id and item.state and item.state.result_state:
            return item.state.result_state in SUCCEEDED_RESULT_STATES
    return run.state.result_state in SUCCEEDED_RESULT_STATES


def _enqueue_if_unannounced(deps: PipelineDeps, record: DecisionRecord, run: Run) -> None:
    """A failed rerun is the chain's next attempt; make sure it gets decided even if its webhook was lost."""
    if deps.store.get(f"{record.workspace_id}:{run.run_id}:{run.repair_count}") is None:
        workspace_id = workspace_id_of(record.workspace_id)
        deps.enqueue(FailureEvent(workspace_id=workspace_id, job_id=run.job_id, run_id=run.run_id,
                                  job_name=record.job_name, source="poller"), 0)
