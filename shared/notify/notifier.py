"""The notifier the pipeline holds: one email per decision, kept in the outbox until it is sent.

`notify` renders the email, records it in the outbox (that insert is the idempotency guard: a redelivered
message finds it and sends nothing), applies the hourly cap and the repeat window, and sends. A send failure
never fails the decision: the message stays pending and `flush` (the timer) tries again with backoff, and
sends the digests of what the cap and the repeat window held back.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared import telemetry
from shared.databricks.models import Job
from shared.decision import DecisionRecord, utcnow
from shared.exceptions import TransientError
from shared.notify.channels.message import ChannelMessage, from_decision, resolved
from shared.notify.channels.route import channels_for
from shared.notify.exceptions import EmailError, InvalidAddress, SendFailed
from shared.notify.kinds import NotificationKind, acted_kind, kind_for, notification_id
from shared.notify.outbox import HeldItem, Outbox, OutboxEntry, hour_key, hour_start, seen_mark, slot_mark
from shared.notify.recipients import resolve_recipients, validate_address
from shared.notify.render import headline, render, render_digest, when_label
from shared.notify.channels.send import ChannelSender
from shared.notify.transports.base import EmailTransport, OutgoingEmail, SendResult
from shared.settings import Settings

log = logging.getLogger(__name__)

# A notification being sent right now is left alone by flush for this long (then it is presumed lost).
SEND_LEASE = timedelta(minutes=5)
MAX_BACKOFF = timedelta(hours=1)
# Escalations are never folded into a digest for repeating: there is only one per chain anyway.
_REPEATABLE = frozenset({NotificationKind.DIAGNOSIS, NotificationKind.RETRY, NotificationKind.OBSERVE})


@dataclass
class FlushReport:
    """What one flush did (ids of notifications)."""

    sent: list[str] = field(default_factory=list)
    retrying: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Notifier:
    """Emails about decisions, through one transport, with the outbox as memory."""

    def __init__(
        self,
        settings: Settings,
        outbox: Outbox,
        transport: EmailTransport,
        *,
        enabled: bool | None = None,
        sender: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        channels: Mapping[str, ChannelSender] | None = None,
        routes: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.transport = transport
        self.enabled = settings.email_enabled if enabled is None else enabled
        self.sender = sender if sender is not None else (settings.email_sender or "")
        self.clock = clock
        self.channels = dict(channels or {})
        self.routes = dict(routes or {})

    # --- the pipeline's call ------------------------------------------------------------------------
    def notify(self, record: DecisionRecord, job: Job | None, kind: NotificationKind | None = None) -> list[str]:
        """Queue or send the email `record` deserves; the ids of its notifications ([] for IGNORE).

        `kind` None means the decision's own email (kind_for); the timer passes OUTCOME when a resized rerun
        has ended. Idempotent per (record.key, kind), and per chain for escalations. Raises TransientError only
        when the outbox itself cannot be reached; send failures are kept in the outbox for flush.
        """
        kind = kind_for(record) if kind is None else kind
        if kind is None:
            return []
        nid = notification_id(record, kind)
        if record.notify_after is not None and record.notify_after > self.clock():  # both aware (UTC)
            return self._wait_to_fold(record, job, kind, nid)
        channel_ids = self._to_channels(from_decision(record, kind.value, headline=headline(record)), record, job, nid)
        now = self.clock()
        entry = self._entry(record, job, kind, nid, now)
        if entry.status != "pending":
            if self.outbox.create(entry):  # False: it exists, another delivery of the same message wrote it
                self._log_final(entry)
            return [nid, *channel_ids]
        if self._admit_at_once(entry, record, kind, now):
            return [nid, *channel_ids]
        # A mark was there already (the same failure emailed lately, a slot taken elsewhere, or this very
        # notification): one step at a time, each insert-if-absent its own guard.
        if not self.outbox.create(entry):
            log.info("notification exists already", extra={"notification": nid, "key": record.key})
            return [nid, *channel_ids]
        self._admit_and_send(entry, record, kind, now)
        return [nid, *channel_ids]

    def resolve(self, record: DecisionRecord, job: Job | None, summary: str) -> list[str]:
        """The chain recovered (its rerun succeeded): tell the channels routed for 'resolved' (PagerDuty closes
        what it opened under the chain's dedup key). Once per chain."""
        return self._to_channels(resolved(record, summary=summary), record, job, f"{record.chain_id}:resolved")

    def _to_channels(self, message: ChannelMessage, record: DecisionRecord, job: Job | None, nid: str) -> list[str]:
        """Put the message in the outbox once per routed channel and send it; a failed send waits for flush."""
        chosen = channels_for(message.kind, self.routes, set(self.channels), job.settings.tags if job is not None else None)
        ids = []
        for name in chosen:
            cid = f"{nid}:{name}"
            ids.append(cid)
            now = self.clock()
            # The message, not the payload, is stored: PagerDuty's payload carries the routing key, a secret.
            entry = OutboxEntry(
                id=cid, kind=message.kind, channel=name, record_key=record.key, chain_id=record.chain_id,
                job_id=record.job_id, job_name=record.job_name, run_id=record.run_id, run_url=record.run_page_url,
                category=record.category.value, action=record.action.value if record.action else None,
                headline=message.summary[:300], recipients=[name], recipient_source="channel", subject=message.title,
                text=message.model_dump_json(), created_at=now, next_attempt_at=now + SEND_LEASE,
                attempts=1,  # counted before the send, in the insert (see _deliver)
            )
            if self.outbox.create(entry):  # False: it exists (this message's earlier delivery wrote it)
                self._deliver(entry, now, counted=True)
        return ids

    def _wait_to_fold(self, record: DecisionRecord, job: Job | None, kind: NotificationKind, nid: str) -> list[str]:
        """The first failure of a transient cause: its email waits in the outbox until `notify_after` (flush sends
        it then), so that it is folded into the incident's should other jobs fail alike (shared/incidents)."""
        entry = self._entry(record, job, kind, nid, self.clock())
        if entry.status == "pending":
            entry.next_attempt_at = record.notify_after
        self.outbox.create(entry)  # False: an earlier delivery wrote it already
        return [nid]

    def notify_incident(self, notice: Any, message: ChannelMessage | None = None,
                        channel_id: str | None = None) -> list[str]:
        """An incident's notification, through this outbox (shared/notify/incident_outbox.py)."""
        from shared.notify.incident_outbox import notify_incident

        return notify_incident(self, notice, message, channel_id, lease=SEND_LEASE)

    # --- the timer's call ---------------------------------------------------------------------------
    def flush(self, now: datetime | None = None) -> FlushReport:
        """Send the digests that are due, then retry every pending notification whose time has come."""
        now = now or self.clock()
        report = FlushReport()
        if not self.enabled and not self.channels:
            return report
        for step in (self._build_digests, self._retry_due):
            try:
                step(now, report)
            except TransientError as exc:
                log.error("outbox unavailable during flush: %s", exc)
                report.errors.append(str(exc))
        try:
            self.outbox.prune(now, timedelta(minutes=self.settings.email_repeat_window_minutes))
        except TransientError as exc:
            report.errors.append(str(exc))
        return report

    # --- steps --------------------------------------------------------------------------------------
    def _entry(self, record: DecisionRecord, job: Job | None, kind: NotificationKind, nid: str,
               now: datetime) -> OutboxEntry:
        recipients = resolve_recipients(acted_kind(record), job, self.settings)
        # On the record itself: the pipeline saves it after notifying, and the email shows it to the defaults.
        record.dropped_recipients = [a[:100] for a in recipients.dropped[:10]]
        email = render(record, kind, self.settings)
        if not self.enabled:
            status, error = "disabled", None
        elif not recipients.to:
            status = "no_recipients"
            error = ("no valid recipient: the job has no on_failure emails, no "
                     f"'{self.settings.email_recipients_tag}' tag, and EMAIL_FALLBACK_RECIPIENTS "
                     "(formerly EMAIL_DEFAULT_RECIPIENTS) is empty")
        else:
            status, error = "pending", None
        return OutboxEntry(
            id=nid, kind=kind.value, status=status, record_key=record.key, chain_id=record.chain_id,
            job_id=record.job_id, job_name=record.job_name, run_id=record.run_id, run_url=record.run_page_url,
            category=record.category.value, action=record.action.value if record.action else None,
            fingerprint=record.fingerprint, headline=headline(record), recipients=list(recipients.to),
            recipient_source=recipients.source, invalid_recipients=[a[:100] for a in recipients.invalid[:10]],
            subject=email.subject, text=email.text, html=email.html, created_at=now,
            # The worker sends right away; should it die first, flush picks the message up after the lease.
            next_attempt_at=now + SEND_LEASE if status == "pending" else None, last_error=error,
        )

    def _repeat_key(self, record: DecisionRecord, kind: NotificationKind) -> str | None:
        """The repeat window's key of this email (job + fingerprint + kind), or None when the window is off."""
        if kind not in _REPEATABLE or self.settings.email_repeat_window_minutes <= 0 or not record.fingerprint:
            return None
        return f"{record.job_id or record.workspace_id}|{record.fingerprint}|{kind.value}"

    def _admit_at_once(self, entry: OutboxEntry, record: DecisionRecord, kind: NotificationKind,
                       now: datetime) -> bool:
        """The common case in one transaction: the notification, its repeat mark and one hourly slot per recipient
        this worker believes free, all inserted only if none exists; then send. False (nothing written) when
        one existed: the caller goes step by step."""
        hour, cap = hour_key(now), self.settings.email_max_per_recipient_per_hour
        repeat_key = self._repeat_key(record, kind)
        marks = [seen_mark(repeat_key, now, entry.id)] if repeat_key else []
        direct, held, slots = [], [], []
        for address in entry.recipients:
            slot = self.outbox.next_slot(address, hour, cap) if cap > 0 else -1
            if slot is None:
                held.append(address)
                continue
            direct.append(address)
            if slot >= 0:
                slots.append((address, slot))
                marks.append(slot_mark(address, hour, slot))
        candidate = entry.model_copy(deep=True)
        if held:
            candidate.recipients, candidate.held_recipients = direct, held
            candidate.status = "pending" if direct else "held"
            candidate.detail = "held for the digest (hourly cap)"
        if direct:
            candidate.attempts = 1  # counted before the send, in the same write (see _deliver)
        if not self.outbox.create_with_marks(candidate, marks):
            for address, slot in slots:
                self.outbox.slot_unused(address, hour, slot)
            return False
        entry.__dict__.update(candidate.__dict__)
        entry._etag = candidate._etag
        if held:
            summary = _summary(entry, now)
            for address in held:
                self.outbox.hold(HeldItem(hour=hour, recipient=address, notification_id=entry.id, reason="cap",
                                          summary=summary))
            if not direct:
                self._log_final(entry)
                return True
        self._deliver(entry, now, counted=True)
        return True

    def _admit_and_send(self, entry: OutboxEntry, record: DecisionRecord, kind: NotificationKind,
                        now: datetime) -> None:
        """Split the recipients into those who get it now and those who read it in the digest; send."""
        hour = hour_key(now)
        window = timedelta(minutes=self.settings.email_repeat_window_minutes)
        repeat_key = self._repeat_key(record, kind)
        repeat = repeat_key is not None and self.outbox.seen_recently(repeat_key, now, window, entry.id)
        direct: list[str] = []
        held: list[tuple[str, str]] = []
        for address in entry.recipients:
            if repeat:
                held.append((address, "repeat"))
            elif self.outbox.take_slot(address, hour, self.settings.email_max_per_recipient_per_hour):
                direct.append(address)
            else:
                held.append((address, "cap"))
        if held:
            entry.recipients = direct
            entry.held_recipients = [a for a, _ in held]
            entry.status = "pending" if direct else "held"
            entry.detail = f"held for the digest ({'same failure again' if repeat else 'hourly cap'})"
            self.outbox.save(entry)
            summary = _summary(entry, now)
            for address, reason in held:
                self.outbox.hold(HeldItem(hour=hour, recipient=address, notification_id=entry.id,
                                          reason=reason, summary=summary))  # type: ignore[arg-type]
            if not direct:
                self._log_final(entry)
                return
        self._deliver(entry, now)

    def _deliver(self, entry: OutboxEntry, now: datetime, *, counted: bool = False) -> None:
        """One send attempt; the outcome (sent, retry later, failed) is saved on the entry.

        The attempt is counted in the outbox before the send: should the worker die mid-send, the next attempt
        knows an earlier one may have reached the provider (ACS then looks the operation up instead of sending).
        `counted`: the entry was written with this attempt counted already (its insert).
        """
        if not counted:
            entry.attempts += 1
            self.outbox.save(entry)
        try:
            result = self._send(entry)
        except SendFailed as exc:
            if entry.attempts >= self.settings.email_max_send_attempts:
                entry.status, entry.next_attempt_at = "failed", None
            else:
                entry.next_attempt_at = now + backoff(entry.attempts)
            entry.last_error = str(exc)[:1000]
            log.warning("email not sent (%s): %s", entry.status, exc,
                        extra={"notification": entry.id, "attempt": entry.attempts})
        except EmailError as exc:
            entry.status, entry.next_attempt_at, entry.last_error = "failed", None, str(exc)[:1000]
            log.error("email refused for good: %s", exc, extra={"notification": entry.id})
        else:
            entry.status, entry.sent_at, entry.next_attempt_at = result.status, self.clock(), None
            entry.transport, entry.provider_id, entry.detail = result.transport, result.provider_id, result.detail
            entry.last_error = None
            self._log_final(entry)
        self.outbox.save(entry)
        telemetry.record_emails(sent=int(entry.status in ("sent", "recorded")), failed=int(entry.status == "failed"))

    def _send(self, entry: OutboxEntry) -> SendResult:
        if entry.channel is not None:
            channel = self.channels.get(entry.channel)
            if channel is None:
                raise SendFailed(f"channel {entry.channel} is not configured any more")
            provider_id = channel.send(channel.payload(ChannelMessage.model_validate_json(entry.text)))
            return SendResult(status="sent", transport=entry.channel, provider_id=provider_id)
        return self.transport.send(OutgoingEmail(
            id=entry.id, sender=self._sender(), to=tuple(entry.recipients), subject=entry.subject, text=entry.text,
            html=entry.html, sender_name=self.settings.email_sender_name, attempt=entry.attempts,
        ))

    def _sender(self) -> str:
        try:
            return validate_address(self.sender)
        except InvalidAddress as exc:
            # A configuration problem an operator fixes: retried, not failed.
            raise SendFailed(f"EMAIL_SENDER is not set to a valid address ({exc})") from exc

    def _retry_due(self, now: datetime, report: FlushReport) -> None:
        for due in self.outbox.due(now):
            entry = self.outbox.claim(due.id, now, now + SEND_LEASE)
            if entry is None:
                continue  # another worker took it
            self._deliver(entry, now)
            if entry.status in ("sent", "recorded"):
                (report.digests if entry.kind == "digest" else report.sent).append(entry.id)
            elif entry.status == "failed":
                report.failed.append(entry.id)
            else:
                report.retrying.append(entry.id)

    def _build_digests(self, now: datetime, report: FlushReport) -> None:
        """For each recipient and past hour with held notifications: one digest entry (sent by _retry_due)."""
        groups: dict[tuple[str, str], list[HeldItem]] = defaultdict(list)
        for item in self.outbox.held_before(hour_key(now)):
            groups[(item.hour, item.recipient.lower())].append(item)
        for (hour, _), items in sorted(groups.items()):
            recipient = items[0].recipient
            digest_id = f"digest:{hour}:{recipient.lower()}"
            existing = self.outbox.get(digest_id)
            if existing is not None:
                # Crashed after writing the digest last time, or items arrived late: report only the new ones.
                reported = set(existing.digest_items)
                self.outbox.release([i for i in items if i.notification_id in reported])
                items = [i for i in items if i.notification_id not in reported]
                if not items:
                    continue
                digest_id += ":late-" + _short_hash(sorted(i.notification_id for i in items))
                if self.outbox.get(digest_id) is not None:
                    self.outbox.release(items)
                    continue
            email = render_digest(recipient, [i.summary for i in items], hour_start(hour), self.settings)
            self.outbox.create(OutboxEntry(
                id=digest_id, kind="digest", status="pending", recipients=[recipient], recipient_source="digest",
                subject=email.subject, text=email.text, html=email.html,
                digest_items=[i.notification_id for i in items], created_at=now, next_attempt_at=now,
            ))
            self.outbox.release(items)

    def _log_final(self, entry: OutboxEntry) -> None:
        log.info("notification %s: %s", entry.status, entry.subject,
                 extra={"notification": entry.id, "status": entry.status, "recipients": len(entry.recipients),
                        "held": len(entry.held_recipients), "job_id": entry.job_id, "run_id": entry.run_id})


def backoff(attempts: int) -> timedelta:
    """1, 2, 4 … minutes after each failed attempt, at most an hour."""
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), MAX_BACKOFF)


def _summary(entry: OutboxEntry, now: datetime) -> dict[str, object]:
    return {
        "id": entry.id, "kind": entry.kind, "job": entry.job_name or (f"job {entry.job_id}" if entry.job_id else ""),
        "job_id": entry.job_id, "run_id": entry.run_id, "run_url": entry.run_url, "category": entry.category,
        "action": entry.action, "headline": entry.headline, "fingerprint": entry.fingerprint,
        "subject": entry.subject, "when": now.isoformat(), "when_label": when_label(now),
    }


def _short_hash(values: list[str]) -> str:
    return hashlib.sha256("\n".join(values).encode()).hexdigest()[:8]
