"""The held incident's clock: escalate once, one canary rerun at a time with backoff, release when it succeeds.

Driven by the incident's own chain of delayed queue messages (FailureEvent.incident_id / incident_tick: one
chain, numbered, so a redelivered tick is ignored) and, as a safety net, by the timer (`sweep`). Every step
is a conditional write of the incident row, so two drivers never both release a canary or escalate twice.
Reruns go out through the existing exactly-once path: the held record becomes `decided` under a fresh claim
and completion.carry_on acts on the intent recorded when it was decided (never a second repair).
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from shared import completion
from shared.databricks.models import SUCCEEDED_RESULT_STATES
from shared.decision import DecisionRecord
from shared.events import FailureEvent
from shared.exceptions import AgentError
from shared.incidents import policy
from shared.incidents.model import Incident
from shared.incidents.send import resend_missing, send_to_all
from shared.store import ClaimLost
from shared.workspaces import workspace_id_of

if TYPE_CHECKING:
    from shared.completion import JobReader
    from shared.pipeline import PipelineDeps
    from shared.settings import Settings

log = logging.getLogger(__name__)


def first_canary_at(settings: Settings, now: datetime, incident_id: str,
                    first_seen: datetime | None = None) -> datetime:
    """When a new held incident's first canary goes out: one backoff (with jitter) after it opened, and never
    within a backoff (+20 %) of the first failure, whose own rerun went out before anyone knew of an incident."""
    base = settings.incident_canary_backoff_seconds
    due = now + timedelta(seconds=policy.canary_delay(0, base, settings.incident_canary_max_backoff_seconds,
                                                       policy.spread(incident_id, 0)))
    if first_seen is not None:
        due = max(due, first_seen + timedelta(seconds=base * (1 + policy.JITTER)))
    return due


def on_event(event: FailureEvent, deps: PipelineDeps, *, job_of: JobReader) -> str:
    """A message of an incident's own: release one held rerun, or one tick of its clock."""
    now = deps.clock()
    assert event.incident_id is not None
    if event.incident_release:
        released = release(deps, event.incident_release, now=now, job_of=job_of)
        return f"incident {event.incident_id}: " + ("released" if released else "nothing to release for") + \
            f" {event.incident_release}"
    incident = deps.incidents.get(event.incident_id) if deps.incidents else None
    if incident is None or event.incident_tick != incident.tick_seq:
        return f"incident {event.incident_id}: tick {event.incident_tick} is not the current one; ignored"
    detail, wait = advance(deps, incident, now, job_of=job_of)
    if wait is not None:
        _next_tick(deps, incident.id, event.incident_tick, now, wait)
    return f"incident {incident.id}: {detail}"


def advance(deps: PipelineDeps, incident: Incident, now: datetime, *,
            job_of: JobReader) -> tuple[str, float | None]:
    """One step of the incident's policy; what it did, and in how many seconds to look again (None: done)."""
    s = deps.settings
    store = deps.incidents
    if policy.escalation_due(incident, now, s.incident_escalate_after_seconds):
        after = s.incident_escalate_after_seconds
        incident, won = store.change(incident.id, lambda i: policy.escalation_due(i, now, after)
                                     and _set(i, escalated_at=now))
        if won:
            log.warning("incident %s escalated", incident.id, extra={"incident_id": incident.id})
            send_to_all(incident, "escalated", deps)
    incident = _trailing_updates(deps, incident, now)
    if policy.quiet(incident, now, s.incident_window_seconds):
        return _resolve(deps, incident, now, f"no new failure with this cause for {s.incident_window_seconds} s"), None
    if not incident.holds:
        return "open", None
    if incident.state != "open":
        return _finish_release(deps, incident, now, job_of), None
    if incident.canary_key is not None:
        outcome = canary_outcome(deps, incident.canary_key)
        if outcome == "succeeded":
            return _recovered(deps, incident, now, job_of), None
        if outcome == "failed":
            wait = policy.canary_delay(incident.canaries, s.incident_canary_backoff_seconds,
                                       s.incident_canary_max_backoff_seconds,
                                       policy.spread(incident.id, incident.canaries))
            key = incident.canary_key
            store.change(incident.id, lambda i: i.canary_key == key and _set(
                i, canary_key=None, next_canary_at=now + timedelta(seconds=wait)))
            return f"canary {key} failed; next canary in {wait:.0f} s", wait
        return f"canary {incident.canary_key} running", max(1.0, s.incident_canary_backoff_seconds / 4)
    if policy.canary_due(incident, now):
        return _release_canary(deps, incident, now, job_of)
    wait = ((incident.next_canary_at - now).total_seconds() if incident.next_canary_at
            else s.incident_canary_backoff_seconds)
    return "waiting for the next canary", max(1.0, wait)


def canary_outcome(deps: PipelineDeps, key: str) -> str:
    """pending | succeeded | failed: how the canary's rerun went, read from its record and Databricks."""
    record = deps.store.get(key)
    if record is None:
        return "failed"
    if record.status in ("held", "claimed", "decided"):
        return "pending"  # being released
    if record.repair_id is None and record.new_run_id is None:
        return "failed"  # nothing was rerun (refused, or decided otherwise): try another member
    if record.outcome in ("succeeded", "failed"):
        return record.outcome  # the timer's follow-up saw it end
    run = deps.jobs_api(workspace_id_of(record.workspace_id)).get_run(record.new_run_id or record.run_id)
    if not run.terminal:
        return "pending"
    if record.new_run_id is None:
        for item in run.repair_history:
            if item.id == record.repair_id and item.state is not None and item.state.result_state:
                return "succeeded" if item.state.result_state in SUCCEEDED_RESULT_STATES else "failed"
    return "succeeded" if run.state.result_state in SUCCEEDED_RESULT_STATES else "failed"


def release(deps: PipelineDeps, key: str, *, now: datetime, job_of: JobReader, canary: bool = False) -> bool:
    """Send one held rerun through the exactly-once path; False if it is not held any more (someone released it)."""
    record = deps.store.get(key)
    if record is None or record.status != "held":
        return False
    owner = completion.new_invocation_id("incident")
    taken = record.model_copy(update={"status": "decided", "claim_owner": owner, "claimed_at": now,
                                      "released_at": now, "canary": record.canary or canary})
    try:
        taken = deps.store.save(taken, owner=owner)  # conditional: of two releasers, one gets ClaimLost
    except ClaimLost:
        return False
    ws = taken.workspace_id
    api = deps.jobs_api(workspace_id_of(ws))
    try:
        completion.carry_on(taken, api, deps, ws, owner, job_of(api, taken.job_id))
    except BaseException:
        completion.release(deps, key, owner)  # decided with its intent: the timer's sweep finishes it
        raise
    log.info("held rerun released%s", " as the canary" if canary else "", extra={"key": key})
    return True


def after_held(record: DecisionRecord, deps: PipelineDeps, *, job_of: JobReader) -> str:
    """A held record met again (its own save, or another message about its run): release it if its incident has
    recovered meanwhile, else leave it to the canary."""
    incident = deps.incidents.get(record.incident_id) if deps.incidents and record.incident_id else None
    if incident is not None and incident.state == "open":
        return f"rerun held by incident {incident.id}"
    released = release(deps, record.key, now=deps.clock(), job_of=job_of)
    return f"incident {record.incident_id} is over: " + ("rerun released" if released else "released already")


def sweep(deps: PipelineDeps, now: datetime, *, job_of: JobReader) -> list[str]:
    """The timer's safety net: advance every live incident, restart a lost chain of ticks, resend lost notices."""
    if deps.incidents is None or not deps.settings.incidents_enabled:
        return []
    done = []
    for incident in deps.incidents.live():
        try:
            resend_missing(incident, deps)
            detail, wait = advance(deps, incident, now, job_of=job_of)
            overdue = incident.tick_due_at is not None and now > incident.tick_due_at + timedelta(seconds=60)
            if wait is not None and incident.tick_seq and overdue:
                _next_tick(deps, incident.id, incident.tick_seq, now, wait)
            done.append(f"{incident.id}: {detail}")
        except AgentError as exc:
            log.error("incident %s: %s", incident.id, exc, extra={"incident_id": incident.id})
    return done


def enqueue_tick(deps: PipelineDeps, incident: Incident, seq: int, now: datetime) -> None:
    """Put tick `seq` of the incident's clock on the queue, due when its next step is."""
    due = incident.tick_due_at or now
    deps.enqueue(_tick_event(incident, seq), max(0, math.ceil((due - now).total_seconds())))


# --- steps -------------------------------------------------------------------------------------------------
def _release_canary(deps: PipelineDeps, incident: Incident, now: datetime,
                    job_of: JobReader) -> tuple[str, float | None]:
    candidate = _held_candidate(deps, incident)
    if candidate is None:
        if now - incident.last_seen > timedelta(seconds=deps.settings.incident_window_seconds):
            return _resolve(deps, incident, now, "nothing was held and no failure joined for a window"), None
        # Nothing held to probe with (the members were not reruns): the next held member starts it.
        return "no held rerun to use as a canary", float(deps.settings.incident_canary_backoff_seconds)
    stored, won = deps.incidents.change(incident.id, lambda i: policy.canary_due(i, now) and _set(
        i, canary_key=candidate.key, canary_started_at=now, canaries=i.canaries + 1))
    if not won:
        return "another driver released the canary", float(deps.settings.incident_canary_backoff_seconds)
    release(deps, candidate.key, now=now, job_of=job_of, canary=True)
    return f"canary {candidate.key} released", max(1.0, deps.settings.incident_canary_backoff_seconds / 4)


def _held_candidate(deps: PipelineDeps, incident: Incident) -> DecisionRecord | None:
    """A held member to rerun as the canary: the one with the most budget left (the lowest attempt)."""
    members = sorted(deps.incidents.members(incident.id, held=True), key=lambda m: (m.attempt, m.joined_at))
    for member in members:
        record = deps.store.get(member.key)
        if record is not None and record.status == "held":
            return record
    return None


def _recovered(deps: PipelineDeps, incident: Incident, now: datetime, job_of: JobReader) -> str:
    s = deps.settings
    note = (f"the cause cleared: the canary rerun ({incident.canary_key}) succeeded; the held reruns go out over "
            f"{s.incident_release_spread_seconds} s")
    stored, won = deps.incidents.change(incident.id, lambda i: i.state == "open" and _set(
        i, state="resolved", recovered_at=now, resolved_at=now, resolution=note))
    if not won:
        return "recovered (by another driver)"
    send_to_all(stored, "resolved", deps)
    held = [m for m in deps.incidents.members(stored.id, held=True) if m.key != stored.canary_key]
    for member, offset in zip(held, policy.release_offsets(len(held), s.incident_release_spread_seconds)):
        deps.enqueue(_release_event(stored, member.key, member.run_id), math.ceil(offset))
    log.info("incident %s recovered; %d held reruns released over %d s", stored.id, len(held),
             s.incident_release_spread_seconds, extra={"incident_id": stored.id})
    return f"canary succeeded; {len(held)} held reruns go out over {s.incident_release_spread_seconds} s"


def _finish_release(deps: PipelineDeps, incident: Incident, now: datetime, job_of: JobReader) -> str:
    """After the spread (and as much again), release whatever is still held: its message was lost."""
    s = deps.settings
    grace = timedelta(seconds=2 * s.incident_release_spread_seconds + 1)
    if incident.recovered_at is None or now < incident.recovered_at + grace:
        return "releasing"
    released = [m.key for m in deps.incidents.members(incident.id, held=True)
                if release(deps, m.key, now=now, job_of=job_of)]
    deps.incidents.change(incident.id, lambda i: not i.released_all and _set(i, released_all=True))
    return f"release finished ({len(released)} released late)"


def _resolve(deps: PipelineDeps, incident: Incident, now: datetime, why: str) -> str:
    stored, won = deps.incidents.change(incident.id, lambda i: i.state == "open" and _set(
        i, state="resolved", resolved_at=now, resolution=f"Resolved: {why}."))
    if won:
        send_to_all(stored, "resolved", deps)
    return f"resolved: {why}"


def _trailing_updates(deps: PipelineDeps, incident: Incident, now: datetime) -> Incident:
    """Jobs that joined after a recipient list was last told: its update once the interval has passed, even if
    nobody joins then (a storm's members arrive within a minute; the next notice may be due long after)."""
    from shared.incidents.notices import notice_id
    from shared.incidents.send import send_notices

    every = deps.settings.incident_update_seconds
    if incident.state != "open" or not any(policy.update_due(a, incident.job_count, now, every)
                                           for a in incident.audiences.values()):
        return incident
    pending: list[tuple[str, str]] = []

    def edit(current: Incident) -> bool:
        pending.clear()
        for key, audience in current.audiences.items():
            if current.state == "open" and policy.update_due(audience, current.job_count, now, every):
                audience.notices.append(notice_id(current.id, "update", key, len(audience.notices)))
                audience.told_at, audience.jobs_told = now, current.job_count
                pending.append(("update", key))
        return bool(pending)

    stored, won = deps.incidents.change(incident.id, edit)
    if won:
        send_notices(stored, pending, deps)
    return stored or incident


def _next_tick(deps: PipelineDeps, incident_id: str, seq: int, now: datetime, wait: float) -> None:
    due = now + timedelta(seconds=wait)
    stored, won = deps.incidents.change(incident_id, lambda i: i.tick_seq == seq and _set(
        i, tick_seq=seq + 1, tick_due_at=due))
    if won:
        deps.enqueue(_tick_event(stored, seq + 1), max(1, math.ceil(wait)))


def _tick_event(incident: Incident, seq: int) -> FailureEvent:
    return FailureEvent(workspace_id=workspace_id_of(incident.workspace_id), run_id=0, source="incident",
                        incident_id=incident.id, incident_tick=seq)


def _release_event(incident: Incident, key: str, run_id: int) -> FailureEvent:
    return FailureEvent(workspace_id=workspace_id_of(incident.workspace_id), run_id=run_id, source="incident",
                        incident_id=incident.id, incident_release=key)


def _set(incident: Incident, **values: object) -> bool:
    for name, value in values.items():
        setattr(incident, name, value)
    return True
