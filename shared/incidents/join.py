"""A decided failure joins the incident of its cause (the pipeline's one call into incidents).

A cause nobody shares costs one Table operation: the cause pointer, inserted if absent. When a second job
(INCIDENT_MIN_JOBS) shows the same cause within the window, the pointer's one ETag'd write that flips it to
`opened` decides who opens the incident: exactly one incident however many members race. From then on each
member is folded into the incident (its own email is not sent: its record says so) and, for a transient
cause outside the job, its rerun is held for the canary (shared/incidents/drive.py).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.decision import DecisionRecord
from shared.exceptions import AgentError, TransientError
from shared.incidents import policy
from shared.incidents.key import describe, holds_reruns
from shared.incidents.model import MAX_FORMING, Audience, CausePointer, Incident, JobRef, Member
from shared.incidents.notices import audience_key, notice_id
from shared.incidents.send import send_notices
from shared.taxonomy import Action

if TYPE_CHECKING:
    from shared.databricks.models import Job
    from shared.pipeline import PipelineDeps

log = logging.getLogger(__name__)

_ATTEMPTS = 50

JOB_CAUSE_CHARS = 160  # each listed job's own error line, kept short: 50 of them ride in the incident row


def before_acting(record: DecisionRecord, job: Job | None, deps: PipelineDeps, owner: str) -> DecisionRecord:
    """The member's record after joining: saved only when it joined an incident (a lone failure's one extra
    Table operation is the cause pointer); status `held` when its rerun waits for the canary."""
    from shared.incidents.drive import after_held

    joined = join(record, job, deps, now=deps.clock())
    if "incident_id" not in joined:
        return record.model_copy(update=joined)  # notify_after only: this invocation's email waits
    record = deps.store.save(record.model_copy(update=joined), owner=owner)
    if record.status == "held":
        after_held(record, deps, job_of=lambda api, job_id: job)  # its incident may have recovered meanwhile
    return record


def join(record: DecisionRecord, job: Job | None, deps: PipelineDeps, *, now: datetime) -> dict[str, Any]:
    """The fields the member's record takes from its incident ({} when it joins none)."""
    store = deps.incidents
    if (store is None or not deps.settings.incidents_enabled or not record.incident_key or not record.agent_enabled
            or record.action in (None, Action.IGNORE)):
        return {}
    ref = _ref(record, job, deps)
    fresh = _pointer(record, ref, now)
    first = _first_of_cause(record, now, deps)
    if store.insert_pointer(fresh):
        return first  # the common path: the first failure of its cause, one operation
    window = timedelta(seconds=deps.settings.incident_window_seconds)
    for _ in range(_ATTEMPTS):
        pointer = store.read_pointer(record.incident_key)
        if pointer is None:
            if store.insert_pointer(fresh):
                return first
            continue
        if pointer.opened:
            incident = store.get(pointer.incident_id) or _create(pointer, record, ref, now, deps)
            if policy.joins(incident, now, deps.settings.incident_window_seconds):
                return _join_open(incident, ref, record, deps, now)
            fresh._etag = pointer._etag  # that incident is over: this failure starts the cause's next one
            if store.replace_pointer(fresh):
                return first
            continue
        if now - pointer.last_seen > window:
            fresh._etag = pointer._etag
            if store.replace_pointer(fresh):
                return first
            continue
        if ref.key not in {m.key for m in pointer.members} and len(pointer.members) < MAX_FORMING:
            pointer.members.append(ref)
        pointer.last_seen = max(pointer.last_seen, now)
        jobs = {m.job_token for m in pointer.members} | {ref.job_token}
        pointer.opened = len(jobs) >= deps.settings.incident_min_jobs
        if not store.replace_pointer(pointer):
            continue  # someone else changed it (maybe opened it): look again
        if not pointer.opened:
            # Still forming (INCIDENT_MIN_JOBS above 2): every member's email waits like the first one's, or all
            # but the first would go out on their own just before the incident opens.
            return first
        incident = _create(pointer, record, ref, now, deps)
        _adopt_earlier(pointer, incident, ref, deps)
        return _join_open(incident, ref, record, deps, now)
    raise TransientError(f"cause pointer of {record.incident_key} kept changing")


def _join_open(incident: Incident, ref: JobRef, record: DecisionRecord, deps: PipelineDeps,
               now: datetime) -> dict[str, Any]:
    settings = deps.settings
    wants_hold = incident.holds and record.is_retry and record.mode == "act"
    pending: list[tuple[str, str]] = []
    state = {"held": False, "start_ticks": False}

    def edit(current: Incident) -> bool:
        pending.clear()
        state.update(held=wants_hold and current.state == "open", start_ticks=False)
        changed = current.add_job(ref)
        if now > current.last_seen:
            current.last_seen, changed = now, True
        # Every recipient list of a listed job hears that the incident opened (once; a late job's list too).
        for job_ref in [*current.jobs, ref]:
            if not job_ref.audience:
                continue
            key = audience_key(job_ref.audience)
            if key not in current.audiences:
                current.audiences[key] = Audience(to=job_ref.audience, notices=[notice_id(current.id, "opened", key)],
                                                  told_at=now, jobs_told=current.job_count)
                pending.append(("opened", key))
                changed = True
        for key, audience in current.audiences.items():
            if policy.update_due(audience, current.job_count, now, settings.incident_update_seconds):
                audience.notices.append(notice_id(current.id, "update", key, len(audience.notices)))
                audience.told_at, audience.jobs_told = now, current.job_count
                pending.append(("update", key))
                changed = True
        if state["held"] and current.tick_seq == 0:
            current.tick_seq = 1  # the first held rerun starts the incident's clock (one chain of ticks)
            current.tick_due_at = current.next_canary_at
            state["start_ticks"] = changed = True
        return changed

    stored, written = deps.incidents.change(incident.id, edit)
    if stored is None:
        raise TransientError(f"incident {incident.id} disappeared")
    if not written:  # nothing new (a redelivery): the state as stored decides
        state["held"] = wants_hold and stored.state == "open"
    held = bool(state["held"])
    deps.incidents.add_member(Member(incident_id=stored.id, key=record.key, job_id=record.job_id, run_id=record.run_id,
                                     attempt=record.attempt, joined_at=now, held=held))
    if written and pending:
        send_notices(stored, pending, deps)
    if state["start_ticks"]:
        from shared.incidents.drive import enqueue_tick

        enqueue_tick(deps, stored, 1, now)
    update: dict[str, Any] = {
        "incident_id": stored.id, "folded_into": stored.id,
        "done": f"folded into incident {stored.id} ({stored.job_count} jobs, {stored.cause}): no email of its own",
    }
    if held:
        update.update(status="held", held_since=now, claim_owner=None,
                      done=f"rerun held by incident {stored.id} ({stored.cause}): it goes out after the incident's "
                           "canary rerun succeeds; no email of its own (folded into the incident's)")
    log.info("joined incident %s%s", stored.id, " (rerun held)" if held else "",
             extra={"key": record.key, "incident_id": stored.id, "jobs": stored.job_count})
    return update


def _create(pointer: CausePointer, record: DecisionRecord, ref: JobRef, now: datetime,
            deps: PipelineDeps) -> Incident:
    """The incident row from its opened pointer; whoever gets here second reads the first one's."""
    from shared.incidents.drive import first_canary_at

    holds = holds_reruns(pointer.category)
    incident = Incident(
        id=pointer.incident_id, workspace_id=record.workspace_id, cause_key=pointer.cause_key,
        cause=describe(pointer.cause_key), category=pointer.category, fingerprint=pointer.fingerprint,
        diagnosis=pointer.diagnosis, holds=holds, first_seen=pointer.first_seen, last_seen=now, opened_at=now,
        next_canary_at=first_canary_at(deps.settings, now, pointer.incident_id, pointer.first_seen) if holds else None,
    )
    for member in pointer.members:
        if member.key != ref.key:
            incident.add_job(member)
    if deps.incidents.create(incident):
        log.info("incident %s opened: %s", incident.id, incident.cause, extra={"incident_id": incident.id})
        return incident
    existing = deps.incidents.get(incident.id)
    if existing is None:
        raise TransientError(f"incident {incident.id} could be neither created nor read")
    return existing


def _adopt_earlier(pointer: CausePointer, incident: Incident, ref: JobRef, deps: PipelineDeps) -> None:
    """The members from before the incident opened: their rows, and the incident's id on their records (their
    own emails went out already: they were alone then)."""
    for member in pointer.members:
        if member.key == ref.key:
            continue
        deps.incidents.add_member(Member(incident_id=incident.id, key=member.key, job_id=member.job_id,
                                         run_id=member.run_id, attempt=member.attempt, joined_at=incident.first_seen))
        try:
            earlier = deps.store.get(member.key)
            if earlier is None or earlier.incident_id is not None:
                continue
            earlier.incident_id = incident.id
            if _fold_waiting_email(earlier, incident.id, deps):
                earlier.folded_into = incident.id
                earlier.done += f"; its email was folded into incident {incident.id} before it went out"
            deps.store.save(earlier)  # merges on a conflict: only these fields are ours
        except AgentError as exc:
            log.warning("could not mark %s as a member of %s: %s", member.key, incident.id, exc)


def _fold_waiting_email(record: DecisionRecord, incident_id: str, deps: PipelineDeps) -> bool:
    """An earlier member's own email, not sent yet, is folded into the incident: one still waiting (notify_after)
    is marked folded; one not even written yet (its invocation is still acting) is pre-empted by a folded entry
    under its id, so its notify finds the id taken and sends nothing. One already sent stays sent."""
    from shared.notify.outbox import OutboxEntry

    outbox = getattr(deps.notifier, "outbox", None)
    if outbox is None:
        return False
    folded = False
    for kind in _OWN_KINDS:
        nid = f"{record.key}:{kind}"
        entry = outbox.get(nid)
        if entry is None:
            tombstone = OutboxEntry(id=nid, kind=kind, status="folded", record_key=record.key, chain_id=record.chain_id,
                                    job_id=record.job_id, job_name=record.job_name, run_id=record.run_id,
                                    detail=f"folded into incident {incident_id}")
            folded = outbox.create(tombstone) or folded
        elif entry.channel is None and entry.status == "pending" and not entry.attempts:
            entry.status, entry.next_attempt_at = "folded", None
            entry.detail = f"folded into incident {incident_id}"
            outbox.save(entry)
            folded = True
    return folded


# The kinds of a member's own email that an incident replaces (notify.kinds.notification_id: key:kind); an
# escalation is keyed by its chain and goes out on its own.
_OWN_KINDS = ("retry", "diagnosis", "observe")


def _first_of_cause(record: DecisionRecord, now: datetime, deps: PipelineDeps) -> dict[str, Any]:
    """A failure of a transient cause outside the job, before its incident opens, keeps its email a moment, to be
    folded should other jobs follow (a storm starts with one failure)."""
    wait = deps.settings.incident_first_email_wait_seconds
    if wait <= 0 or not holds_reruns(record.category):
        return {}
    return {"notify_after": now + timedelta(seconds=wait)}


def _ref(record: DecisionRecord, job: Job | None, deps: PipelineDeps) -> JobRef:
    from shared.notify.kinds import NotificationKind
    from shared.notify.recipients import resolve_recipients

    audience = list(resolve_recipients(NotificationKind.DIAGNOSIS, job, deps.settings).to)
    from shared.notify.subject import headline

    return JobRef(key=record.key, job_id=record.job_id, job_name=record.job_name, run_id=record.run_id,
                  run_url=record.run_page_url, attempt=record.attempt, audience=audience,
                  cause_line=headline(record)[:JOB_CAUSE_CHARS])


def _pointer(record: DecisionRecord, ref: JobRef, now: datetime) -> CausePointer:
    from shared.incidents.key import key_hash
    from shared.notify.subject import headline

    assert record.incident_key is not None
    incident_id = f"inc-{key_hash(record.incident_key)[:12]}-{int(now.timestamp())}"
    return CausePointer(cause_key=record.incident_key, incident_id=incident_id, first_seen=now, last_seen=now,
                        members=[ref], category=record.category, fingerprint=record.fingerprint,
                        diagnosis=(record.analysis.root_cause or headline(record))[:500])
