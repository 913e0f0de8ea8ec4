"""Carrying a decision through: act on its recorded intent, notify, finish the record; and finishing records
an earlier invocation left half done.

A record goes claimed → decided (with its intent, before anything is sent) → acted → done. Whoever holds
the claim next (the message's redelivery, a later message about the same run, or the timer once the lease is
over) picks it up where it stopped: `act` recognises what Databricks already shows and sends only the rest,
so a record never stays `decided` once its action is known to have happened.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from shared import actions
from shared.databricks.api import JobsApi
from shared.databricks.models import Job, Run
from shared.decision import DecisionRecord
from shared.events import FailureEvent
from shared.exceptions import AgentError, PermanentError
from shared.store import as_utc
from shared.taxonomy import Action
from shared.workspaces import workspace_id_of

if TYPE_CHECKING:
    from shared.pipeline import PipelineDeps

log = logging.getLogger(__name__)

# The pipeline's read_job, passed in (the pipeline imports this module, not the other way round).
JobReader = Callable[[JobsApi, "int | None"], "Job | None"]


def new_invocation_id(label: str = "inv") -> str:
    """A claim owner for one invocation: never the message id, which a second invocation shares."""
    return f"{label}:{uuid.uuid4().hex}"


def carry_on(record: DecisionRecord, api: JobsApi, deps: PipelineDeps, ws: str, owner: str,
             job: Job | None, *, chain: list[DecisionRecord] | None = None) -> DecisionRecord:
    """From `decided` (intent on record) or `acted` to `done`, saved (merging, as `owner`). `chain`: the
    chain as the decision read it (None: read it here)."""
    record = _join_incident(record, job, deps, owner)  # may fold its email, or hold its rerun (status held)
    if record.status == "decided":
        # Acted is not saved on its own: the done record carries what the action did. A worker that stops in
        # between leaves the record decided, and whoever finishes it acts again from the intent, which
        # recognises what Databricks shows already (actions.act) and sends only the rest.
        record = _act(record, api, deps, ws, chain)
    if record.status == "acted":
        # A member of an incident has no email of its own: the incident's notification tells its people.
        folded = record.folded_into is not None
        ids = deps.notifier.notify(record, job) if record.agent_enabled and not folded else []
        done = f"{record.done}; no email of its own: folded into incident {record.folded_into}" if folded else record.done
        record = record.model_copy(update={"notifications": ids, "status": "done", "finished_at": deps.clock(),
                                           "done": done})
        record = deps.store.save(record, owner=owner)
    return record


def _join_incident(record: DecisionRecord, job: Job | None, deps: PipelineDeps, owner: str) -> DecisionRecord:
    """Before acting, once: the incident of its cause (shared/incidents/join.py, reached through the store so that
    this module imports nothing of incidents, which builds on it)."""
    incidents = getattr(deps, "incidents", None)
    if record.status != "decided" or record.incident_id is not None or incidents is None:
        return record
    return incidents.before_acting(record, job, deps, owner)


def finish_run_records(run: Run, api: JobsApi, deps: PipelineDeps, ws: str, owner: str, *, skip: str,
                       job_of: JobReader) -> list[str]:
    """Finish this run's records that an earlier invocation left decided or acted (their key holds the run's
    repair count of then, so a redelivery after the agent's own repair computes another key)."""
    finished: list[str] = []
    if run.repair_count == 0:
        return finished  # keys hold the repair count: this run has no record but its own (`skip`)
    for record in deps.store.unfinished(ws, run.run_id):
        if record.key == skip:
            continue
        if _finish(record, run, api, deps, ws, owner, job_of):
            finished.append(record.key)
    return finished


def finish_unfinished(deps: PipelineDeps, now: datetime | None = None, *, job_of: JobReader) -> list[str]:
    """The timer's sweep: finish every record whose invocation stopped (claim released, or lease over).

    A record still `claimed` (nothing decided, nothing sent) is put back on the queue instead, once its lease is
    over, so the pipeline decides it.
    """
    now = now or deps.clock()
    finished: list[str] = []
    for record in deps.store.unfinished():
        stale = as_utc(record.claimed_at or record.received_at) < now - deps.store.lease
        if not stale and record.claim_owner is not None:
            continue  # an invocation is on it
        workspace_id = workspace_id_of(record.workspace_id)
        try:
            if record.status == "claimed":
                if stale:
                    deps.enqueue(FailureEvent(workspace_id=workspace_id, job_id=record.job_id, run_id=record.run_id,
                                              job_name=record.job_name, source="poller"), 0)
                    finished.append(record.key)
                continue
            api = deps.jobs_api(workspace_id)
            if _finish(record, api.get_run(record.run_id), api, deps, record.workspace_id,
                       new_invocation_id("timer"), job_of, now=now):
                finished.append(record.key)
        except AgentError as exc:
            log.error("could not finish decision %s: %s", record.key, exc)
    return finished


def _finish(record: DecisionRecord, run: Run, api: JobsApi, deps: PipelineDeps, ws: str, owner: str,
            job_of: JobReader, now: datetime | None = None) -> bool:
    claim = deps.store.claim(record, owner, now=now or deps.clock())
    if not claim.granted or claim.record is None:
        return False
    current = claim.record
    try:
        if current.status == "claimed":
            # Nothing was decided and the run has moved on (repaired by someone, or rerun): nothing to finish.
            current = current.model_copy(update={
                "status": "done", "finished_at": deps.clock(),
                "done": "no decision was made before the run was repaired again; its next failure has its own",
            })
            deps.store.save(current, owner=owner)
            return True
        log.info("finishing a decision an earlier invocation left %s", current.status, extra={"key": current.key})
        carry_on(current, api, deps, ws, owner, job_of(api, current.job_id))
        return True
    except BaseException:
        release(deps, current.key, owner)
        raise


def release(deps: PipelineDeps, key: str, owner: str) -> None:
    """Give the claim back after a failed invocation, so the next delivery need not wait for the lease."""
    try:
        deps.store.release(key, owner)
    except Exception:  # noqa: BLE001 - the lease still frees it; the original error matters more
        log.warning("could not release the claim", extra={"key": key})


def _act(record: DecisionRecord, api: JobsApi, deps: PipelineDeps, ws: str,
         chain: list[DecisionRecord] | None = None) -> DecisionRecord:
    intent = record.intent
    _settle_earlier_resizes(record, api, deps, ws, superseded=intent is not None and intent.resize is not None,
                            chain=chain)
    try:
        result = actions.act(record.action, intent, api, observe=record.mode == "observe")
    except PermanentError as exc:
        # Databricks refused the action (no CAN_MANAGE for a resize, a run that cannot be repaired ...):
        # a person has to take over, so tell them instead of dropping the failure in the poison queue.
        log.warning("action refused, emailing instead: %s", exc, extra={"run_id": record.run_id})
        return record.model_copy(update={
            "action": Action.SEND_EMAIL, "status": "acted", "error": f"{type(exc).__name__}: {exc}",
            "reason": f"{record.reason}; but Databricks refused the {record.action.value}: {exc}",
            "done": "nothing changed in Databricks: the rerun was refused, so the owners were emailed",
        })
    for new_run_id in result.rerun_links:
        deps.state.put("rerun", f"{ws}:{new_run_id}", {"chain_id": record.chain_id, "attempt": record.attempt + 1})
    return record.model_copy(update={
        "status": "acted", "done": result.done, "repair_id": result.repair_id, "new_run_id": result.new_run_id,
        "resize": result.resize, "outcome": result.outcome,
    })


def _settle_earlier_resizes(record: DecisionRecord, api: JobsApi, deps: PipelineDeps, ws: str, *,
                            superseded: bool, chain: list[DecisionRecord] | None = None) -> None:
    """Resizes earlier in the chain: handed over to this one's resize, or put back when the chain stops rerunning."""
    if record.mode == "observe":
        return
    earlier = [r for r in (deps.store.chain(ws, record.chain_id) if chain is None else chain)
               if r.key != record.key and r.resize and not r.resize.reverted and r.job_id is not None]
    stops = record.action not in (Action.RETRY, Action.RETRY_WITH_NEW_PARAMS)
    for previous in earlier:
        if superseded:
            note = f"superseded by the resize of attempt {record.attempt}, which reverts to the original size"
        elif stops and deps.settings.resize_revert:
            note = actions.revert_resize(api, previous.job_id, previous.resize)
        else:
            continue
        previous.resize.reverted = superseded or note.startswith("reverted")
        previous.done += f"; {note}"
        deps.store.save(previous)
