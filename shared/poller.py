"""The timer's job: catch failures no webhook reported, follow the reruns the agent started, bring poison back.

1. A sweep of `runs/list` (`completed_only=true`, `run_type=JOB_RUN`) over the runs that ended since the
   checkpoint (minus an overlap, since runs finish out of order). runs/list filters on start time, so the
   sweep lists every run started up to POLL_MAX_RUN_HOURS before: on a busy workspace, tens of thousands.
   It goes page by page, saves its place after each page (the oldest start time listed so far), and stops
   at POLL_TIME_BUDGET_SECONDS; the next tick carries on where it stopped. The checkpoint moves when a sweep
   is complete. Page tokens are not kept across ticks (their lifetime is not documented): the saved place is
   a start time, re-listed inclusively.
2. A failed run is enqueued at most once per end: the poller records what it enqueued (state "enqueued") and
   skips a run already decided; runs that ended in the last POLL_SETTLE_MINUTES, or after the oldest message
   still waiting in the queue (a burst), are left to their webhook's message until the queue has caught up.
3. Poisoned failures whose cause was transient are queued again once their workspace answers (shared/poison.py).
4. For each decision whose rerun is pending: record how it ended, revert a resize once its rerun is over,
   email how a resized rerun ended (which size worked, whether it was reverted), and enqueue the rerun's
   failure if no webhook announced it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from shared import actions, poison, telemetry
from shared.completion import finish_unfinished
from shared.databricks.api import JobsApi
from shared.databricks.models import RUN_JOB_TRIGGER, SUCCEEDED_RESULT_STATES, Job, Run, RunsPage, RunSummary
from shared.decision import DecisionRecord
from shared.events import FailureEvent
from shared.exceptions import AgentError
from shared.notify.kinds import outcome_kind
from shared.pipeline import PipelineDeps, read_job
from shared.store import as_utc
from shared.workspaces import workspace_id_of, workspace_key

log = logging.getLogger(__name__)

_POLLED_FAILURES = frozenset({"FAILED", "TIMEDOUT"})  # user cancellations are not worth a record of their own
SWEEP = "poll_sweep"  # state kind: a sweep in progress, per workspace
ENQUEUED = "enqueued"  # state kind: failed runs the poller enqueued, with the end time it saw


@dataclass
class PollReport:
    """What one timer tick did, per workspace."""

    enqueued: list[int] = field(default_factory=list)
    followed: list[str] = field(default_factory=list)
    reverted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    pages: int = 0  # runs/list pages read
    listed: int = 0  # runs seen on them
    unfinished: list[str] = field(default_factory=list)  # workspaces whose sweep goes on next tick
    requeued: list[str] = field(default_factory=list)  # poison entries queued again


def poll(deps: PipelineDeps, now: datetime | None = None, *, monotonic: Callable[[], float] = time.monotonic) -> PollReport:
    """One timer tick over every configured workspace. Errors in one workspace do not stop the others."""
    now = now or deps.clock()
    report = PollReport()
    deadline = monotonic() + deps.settings.poll_time_budget_seconds
    workspaces = deps.settings.workspaces()
    answering: set[str] = set()
    for index, workspace in enumerate(workspaces):
        ws = workspace_key(workspace)
        share = (deadline - monotonic()) / (len(workspaces) - index)  # what is left, shared by those left
        try:
            _poll_workspace(deps, workspace.workspace_id, ws, now, report, deadline=monotonic() + share,
                            monotonic=monotonic)
            answering.add(ws)
        except AgentError as exc:
            log.error("poll failed for workspace %s: %s", ws, exc)
            report.errors.append(f"{ws}: {exc}")
    _requeue_poison(deps, now, answering, report)
    finish_unfinished(deps, now, job_of=read_job)  # decisions an invocation stopped in the middle of
    if getattr(deps, "incidents", None) is not None:  # canary, release, escalation: the incidents' safety net
        from shared.incidents.drive import sweep as sweep_incidents

        sweep_incidents(deps, now, job_of=read_job)
    _follow_up(deps, report)
    if deps.learning is not None:  # verdicts that waited for the decision on a rerun's failure
        _judge_awaiting(deps, now, report)
    flush = getattr(deps.notifier, "flush", None)
    if callable(flush):
        flush(now)
    return report


def _poll_workspace(deps: PipelineDeps, workspace_id: str | None, ws: str, now: datetime, report: PollReport, *,
                    deadline: float, monotonic: Callable[[], float]) -> None:
    api = deps.jobs_api(workspace_id)
    sweep = deps.state.get(SWEEP, ws) or _new_sweep(deps, ws, now)
    query_to = sweep.get("start_to")  # fixed for this tick: page tokens belong to one query
    token: str | None = None
    while True:
        page = _list_page(api, sweep["started_after"], query_to, token)
        report.pages += 1
        report.listed += len(page.runs)
        for summary in page.runs:
            if _worth_enqueueing(deps, ws, summary, sweep):
                deps.enqueue(FailureEvent(workspace_id=workspace_id, job_id=summary.job_id, run_id=summary.run_id,
                                          job_name=summary.run_name, source="poller"), 0)
                # After the enqueue: should this write fail, the run is enqueued once more, never lost.
                deps.state.put(ENQUEUED, f"{ws}:{summary.run_id}",
                               {"end_time": summary.end_time, "at": now.isoformat()})
                report.enqueued.append(summary.run_id)
        starts = [r.start_time for r in page.runs if r.start_time]
        if starts:
            sweep["start_to"] = min([*starts, *([sweep["start_to"]] if sweep.get("start_to") else [])])
        token = page.next_page_token
        if not token:
            deps.state.put("checkpoint", ws, {"until_ms": sweep["until_ms"]})
            deps.state.delete(SWEEP, ws)
            _forget_enqueued_before(deps, ws, sweep["ended_after"])
            return
        deps.state.put(SWEEP, ws, sweep)  # page by page: a tick that dies here loses one page at most
        if monotonic() >= deadline:
            report.unfinished.append(ws)
            log.warning("poll of %s stopped at its time budget after %d pages; the next tick carries on", ws,
                        report.pages, extra={"workspace": ws, "start_to": sweep["start_to"]})
            return


def _new_sweep(deps: PipelineDeps, ws: str, now: datetime) -> dict[str, Any]:
    settings = deps.settings
    checkpoint = deps.state.get("checkpoint", ws)
    now_ms = int(now.timestamp() * 1000)
    floor = int(checkpoint["until_ms"]) if checkpoint else now_ms - settings.poll_lookback_minutes * 60_000
    ended_after = floor - settings.poll_overlap_minutes * 60_000
    until_ms = now_ms - settings.poll_settle_minutes * 60_000
    backlog = _oldest_waiting(deps)
    if backlog is not None:
        # A burst: messages wait in the queue. A run that ended after the oldest of them probably has its
        # webhook's message among them; the checkpoint stays before it (never goes back) until the queue has
        # caught up, and the runs after it are looked at then.
        until_ms = max(floor, min(until_ms, int(backlog.timestamp() * 1000)))
    return {
        "ended_after": ended_after,
        # runs/list filters on start time: a six-hour run that failed a minute ago started long before the
        # checkpoint. Look back by the longest run, then keep the runs that ended inside the window.
        "started_after": ended_after - settings.poll_max_run_hours * 3_600_000,
        "until_ms": until_ms,
        "start_to": None,
        "since": now.isoformat(),
    }


def _oldest_waiting(deps: PipelineDeps) -> datetime | None:
    peek = getattr(deps, "oldest_waiting", None)
    if not callable(peek):
        return None
    try:
        return peek()
    except AgentError as exc:  # the queue cannot be read: fall back to the settle time alone
        log.warning("could not peek the failure queue: %s", exc)
        return None


def _list_page(api: JobsApi, started_after: int, start_to: int | None, token: str | None) -> RunsPage:
    list_page = getattr(api, "list_runs_page", None)
    if callable(list_page):
        return list_page(start_time_from=started_after, start_time_to=start_to, page_token=token,
                         completed_only=True, run_type="JOB_RUN")
    # A JobsApi without pages (simple doubles): everything as one page.
    runs = api.list_runs(start_time_from=started_after, start_time_to=start_to, completed_only=True)
    return RunsPage(runs=list(runs), next_page_token=None)


def _worth_enqueueing(deps: PipelineDeps, ws: str, summary: RunSummary, sweep: dict[str, Any]) -> bool:
    if summary.end_time and not sweep["ended_after"] <= summary.end_time <= sweep["until_ms"]:
        return False  # ended before the window, or so recently that its webhook's message is probably waiting
    failed = summary.state.result_state in _POLLED_FAILURES or summary.state.life_cycle_state == "INTERNAL_ERROR"
    if not failed or summary.run_type not in (None, "JOB_RUN"):
        return False
    if summary.trigger == RUN_JOB_TRIGGER:
        return False  # a run_job child: its parent failed too, ended later, and is the one decided (run_job.py)
    marker = deps.state.get(ENQUEUED, f"{ws}:{summary.run_id}")
    if marker is not None and marker.get("end_time") == summary.end_time:
        return False  # enqueued already for this end: a message is waiting, or was handled
    return not _decided_since(deps, ws, summary)


def _forget_enqueued_before(deps: PipelineDeps, ws: str, ended_after: int) -> None:
    """Drop the marks of runs that ended before this sweep's window: no later sweep lists them as new."""
    for key, mark in deps.state.list(ENQUEUED):
        if key.startswith(f"{ws}:") and int(mark.get("end_time") or 0) < ended_after:
            deps.state.delete(ENQUEUED, key)


def _requeue_poison(deps: PipelineDeps, now: datetime, answering: set[str], report: PollReport) -> None:
    settings = deps.settings
    if settings.poison_max_requeues <= 0:
        return
    try:
        done = poison.requeue_due(
            deps.state, deps.enqueue, now=now, retry_after=timedelta(minutes=settings.poison_retry_minutes),
            max_requeues=settings.poison_max_requeues, answering=answering, workspace_of=deps.workspace_key,
        )
    except AgentError as exc:
        report.errors.append(f"poison: {exc}")
        return
    report.requeued.extend(done.requeued)


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
    telemetry.record_rerun_outcome(succeeded, category=record.category.value)
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
    if succeeded and record.agent_enabled and not record.folded_into:  # an incident's member: its incident resolves
        _resolve_channels(deps, api, record, job)
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


def _resolve_channels(deps: PipelineDeps, api: JobsApi, record: DecisionRecord, job: Job | None) -> None:
    """The chain recovered: close what the escalation channels opened for it (PagerDuty's incident)."""
    # Optional on purpose: test doubles and email-only notifiers have no channels to resolve, and then the
    # job is not read for nothing.
    resolve = getattr(deps.notifier, "resolve", None)
    if resolve is None or not getattr(deps.notifier, "channels", None):
        return
    sent = resolve(record, job if job is not None else read_job(api, record.job_id), f"A rerun succeeded: {record.done}")
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
