"""Poison that comes back: why a failure ended in the poison queue, and queueing it again once that has cleared.

Every message the worker gives up on is recorded (state kind "poison"): the reason whole, the body, whether the
cause was transient (the Jobs API or storage kept failing longer than the queue's 5 tries) or permanent (a
bad message, a run that does not exist). The poller queues transient ones again, at most POISON_MAX_REQUEUES
times, POISON_RETRY_MINUTES after they were poisoned and only for a workspace that answered on this tick; the
claim makes a requeued failure that was decided meanwhile a duplicate, never a second action.
`python -m shared poison list|requeue` shows them and queues any of them by hand.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from shared import telemetry
from shared.events import FailureEvent
from shared.redaction import redact
from shared.state import StateStore

log = logging.getLogger(__name__)

KIND = "poison"


@dataclass
class RequeueReport:
    requeued: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def run_of(body: str) -> str | None:
    """'workspace:run' of the failure a message names, or None when its body does not parse."""
    try:
        event = FailureEvent.from_message(body)
    except Exception:  # noqa: BLE001 - a body that does not parse is exactly what poison keeps
        return None
    return f"{event.workspace_id or 'default'}:{event.run_id}"


def record_poison(state: StateStore, message_id: str, body: str, reason: str, dequeue_count: int, *,
                  transient: bool, at: datetime) -> None:
    """Record why `body` goes to the poison queue, under its message id (never raises: the queue keeps the message).

    A failure queued again and poisoned again comes back with a new message id: its earlier entries are marked
    superseded and their requeue count carried over, so the cap holds across messages.
    """
    log.error("message goes to the poison queue: %s", reason, extra={"message_id": message_id})
    telemetry.record_poison(reason.partition(":")[0])  # the exception's type: what the alert groups by
    run = run_of(body)
    requeues = 0
    try:
        for key, entry in state.list(KIND) if run else []:
            if key != message_id and entry.get("run") == run:
                requeues = max(requeues, int(entry.get("requeues", 0)))
                if entry.get("status") != "superseded":
                    state.put(KIND, key, {**entry, "status": "superseded", "superseded_by": message_id})
    except Exception:  # noqa: BLE001 - the count is a bound on requeues; the reason matters more
        log.exception("could not read earlier poison entries", extra={"message_id": message_id})
    try:
        # Masked like the log line: the body and the error may quote a token (the queue keeps the original).
        state.put(KIND, message_id, {
            "reason": redact(reason), "body": redact(body), "dequeue_count": dequeue_count, "at": at.isoformat(),
            "message_id": message_id, "run": run, "transient": transient, "status": "poisoned",
            "requeues": requeues,
        })
    except Exception:  # noqa: BLE001 - the poison queue still keeps the message; this is only the reason
        log.exception("could not record the poison reason", extra={"message_id": message_id})


def entries(state: StateStore) -> list[tuple[str, dict[str, Any]]]:
    """Every poison entry, oldest first."""
    return sorted(state.list(KIND), key=lambda item: str(item[1].get("at", "")))


def requeue_due(
    state: StateStore,
    enqueue: Callable[[FailureEvent, int], None],
    *,
    now: datetime,
    retry_after: timedelta,
    max_requeues: int,
    answering: Collection[str | None] | None,
    workspace_of: Callable[[str | None], str],
) -> RequeueReport:
    """Queue again every poisoned failure whose cause was transient and has had time to clear.

    answering: the workspace keys whose Jobs API answered on this tick (None: do not check).
    """
    report = RequeueReport()
    for key, entry in entries(state):
        if entry.get("status") != "poisoned" or not entry.get("transient"):
            continue
        if int(entry.get("requeues", 0)) >= max_requeues or _when(entry) > now - retry_after:
            continue
        try:
            event = FailureEvent.from_message(entry.get("body") or "")
        except Exception:  # noqa: BLE001 - recorded as transient but unreadable: leave it to a person
            continue
        if answering is not None and workspace_of(event.workspace_id) not in answering:
            report.skipped.append(key)  # its workspace still does not answer: the cause has not cleared
            continue
        requeue(state, enqueue, key, entry, event, now=now)
        report.requeued.append(key)
    return report


def requeue(state: StateStore, enqueue: Callable[[FailureEvent, int], None], key: str, entry: dict[str, Any],
            event: FailureEvent, *, now: datetime) -> None:
    """Put one poisoned failure back on the queue and note it on its entry (enqueued first: nothing lost)."""
    enqueue(event, 0)
    state.put(KIND, key, {**entry, "status": "requeued", "requeued_at": now.isoformat(),
                          "requeues": int(entry.get("requeues", 0)) + 1})
    log.warning("poisoned failure queued again", extra={"key": key, "run_id": event.run_id})


def _when(entry: dict[str, Any]) -> datetime:
    try:
        value = datetime.fromisoformat(str(entry.get("at")))
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
