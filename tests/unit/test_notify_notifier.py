"""The notifier: one email per decision, kept until sent, capped per recipient, digested, never failing a decision."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.databricks.models import Job
from shared.exceptions import TransientError
from shared.notify import Notifier
from shared.notify.exceptions import SendFailed, SendRejected
from shared.notify.outbox import MemoryOutbox
from shared.notify.kinds import NotificationKind
from shared.notify.sample import sample_outcome_record, sample_record
from shared.notify.transports.base import EmailTransport, OutgoingEmail, SendResult
from shared.notify.transports.table import TableTransport
from shared.settings import Settings
from shared.taxonomy import Action

T0 = datetime(2025, 11, 24, 9, 41, tzinfo=timezone.utc)


class RecordingTransport(EmailTransport):
    """In-memory transport: keeps what it sends; can be told to fail the next sends."""

    name = "memory"

    def __init__(self) -> None:
        self.sent: list[OutgoingEmail] = []
        self.failures: list[Exception] = []

    def _send(self, email: OutgoingEmail) -> SendResult:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(email)
        return SendResult(self.name, provider_id=f"m{len(self.sent)}", detail="kept in memory")


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def owners_job(*addresses: str, job_id: int = 42) -> Job:
    return Job.model_validate({"job_id": job_id, "settings": {"name": "nightly_etl",
                                                            "email_notifications": {"on_failure": list(addresses)}}})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
def outbox() -> MemoryOutbox:
    return MemoryOutbox()


def make(outbox, transport, clock, **values) -> Notifier:
    settings = Settings(**{"email_enabled": True, "email_sender": "agent@example.com",
                           "email_default_recipients": ["platform@example.com"], **values})
    return Notifier(settings, outbox, transport, clock=clock)


def record(n: int = 1, action: Action = Action.SEND_EMAIL, *, job_id: int = 42, fingerprint: str | None = None,
           mode: str = "act"):
    r = sample_record(action, mode=mode, key_suffix=f"r{n}")
    r.key, r.run_id, r.job_id = f"default:{1000 + n}:0", 1000 + n, job_id
    r.chain_id = f"default:{1000 + n}"
    if fingerprint is not None:
        r.fingerprint = fingerprint
    return r


def test_a_diagnosis_is_sent_to_the_jobs_owners_and_recorded(outbox, transport, clock):
    notifier = make(outbox, transport, clock)
    ids = notifier.notify(record(), owners_job("owner@example.com"))
    assert ids == ["default:1001:0:diagnosis"]
    assert [m.to for m in transport.sent] == [("owner@example.com",)]
    entry = outbox.get(ids[0])
    assert entry.status == "sent" and entry.recipient_source == "on_failure" and entry.attempts == 1
    assert entry.subject == transport.sent[0].subject


def test_ignore_sends_nothing_and_records_nothing(outbox, transport, clock):
    r = record()
    r.action = Action.IGNORE
    assert make(outbox, transport, clock).notify(r, None) == []
    assert transport.sent == []


def test_a_redelivered_decision_is_not_emailed_twice(outbox, transport, clock):
    notifier = make(outbox, transport, clock)
    first = notifier.notify(record(), None)
    again = notifier.notify(record(), None)
    assert first == again
    assert len(transport.sent) == 1


def test_a_chain_escalates_once(outbox, transport, clock):
    notifier = make(outbox, transport, clock)
    first, later = record(1, Action.ESCALATE), record(2, Action.ESCALATE)
    later.chain_id = first.chain_id
    assert notifier.notify(first, None) == notifier.notify(later, None)
    assert len(transport.sent) == 1


def test_disabled_email_records_every_notification_and_sends_none(outbox, transport, clock):
    notifier = make(outbox, transport, clock, email_enabled=False)
    ids = notifier.notify(record(), None)
    assert outbox.get(ids[0]).status == "disabled"
    assert outbox.get(ids[0]).text  # the email is kept: anyone can read what would have been sent
    assert notifier.flush(clock.now + timedelta(hours=2)).sent == []
    assert transport.sent == []


def test_the_table_transport_records_only(outbox, clock):
    notifier = make(outbox, TableTransport(), clock)
    ids = notifier.notify(record(), None)
    assert outbox.get(ids[0]).status == "recorded"


def test_no_recipient_anywhere_is_recorded_with_the_reason(outbox, transport, clock):
    notifier = make(outbox, transport, clock, email_default_recipients=[])
    entry = outbox.get(notifier.notify(record(), None)[0])
    assert entry.status == "no_recipients"
    assert "EMAIL_DEFAULT_RECIPIENTS" in entry.last_error
    assert transport.sent == []


def test_a_failed_send_does_not_raise_and_is_retried_by_flush(outbox, transport, clock):
    notifier = make(outbox, transport, clock)
    transport.failures.append(SendFailed("smtp: connection refused"))
    ids = notifier.notify(record(), None)
    entry = outbox.get(ids[0])
    assert entry.status == "pending" and entry.attempts == 1 and "connection refused" in entry.last_error
    assert notifier.flush(clock.now).sent == []  # not due yet: backoff
    report = notifier.flush(clock.now + timedelta(minutes=1))
    assert report.sent == ids
    assert outbox.get(ids[0]).status == "sent" and outbox.get(ids[0]).attempts == 2
    assert len(transport.sent) == 1


def test_an_unexpected_transport_error_is_a_retryable_failure_not_a_crash(outbox, transport, clock):
    transport.failures.append(RuntimeError("bug in a transport"))
    ids = make(outbox, transport, clock).notify(record(), None)
    assert outbox.get(ids[0]).status == "pending"
    assert "RuntimeError" in outbox.get(ids[0]).last_error


def test_a_refused_message_is_marked_failed_and_not_retried(outbox, transport, clock):
    notifier = make(outbox, transport, clock)
    transport.failures.append(SendRejected("acs: InvalidRecipient"))
    ids = notifier.notify(record(), None)
    assert outbox.get(ids[0]).status == "failed"
    assert notifier.flush(clock.now + timedelta(hours=5)).sent == []


def test_retries_back_off_and_give_up_after_the_configured_attempts(outbox, transport, clock):
    notifier = make(outbox, transport, clock, email_max_send_attempts=3)
    transport.failures.extend(SendFailed("down") for _ in range(5))
    ids = notifier.notify(record(), None)
    assert notifier.flush(clock.now + timedelta(minutes=1)).retrying == ids  # attempt 2, next in 2 minutes
    assert notifier.flush(clock.now + timedelta(minutes=2)).retrying == []  # not due yet
    assert notifier.flush(clock.now + timedelta(minutes=3)).failed == ids  # attempt 3 of 3
    assert outbox.get(ids[0]).status == "failed"


def test_a_worker_that_dies_while_sending_leaves_the_message_for_flush(outbox, transport, clock):
    notifier = make(outbox, transport, clock)
    transport.failures.append(SystemExit("the worker is shut down mid-send"))
    with pytest.raises(SystemExit):
        notifier.notify(record(), None)
    assert notifier.flush(clock.now + timedelta(minutes=1)).sent == []  # it may still be sending: leased
    assert notifier.flush(clock.now + timedelta(minutes=6)).sent == ["default:1001:0:diagnosis"]
    assert len(transport.sent) == 1


def test_a_sender_missing_from_the_settings_keeps_messages_pending(outbox, transport, clock):
    notifier = make(outbox, transport, clock, email_sender=None)
    ids = notifier.notify(record(), None)
    assert outbox.get(ids[0]).status == "pending"
    assert "EMAIL_SENDER" in outbox.get(ids[0]).last_error


def test_the_hourly_cap_holds_the_rest_for_one_digest(outbox, transport, clock):
    notifier = make(outbox, transport, clock, email_max_per_recipient_per_hour=3)
    ids = [notifier.notify(record(n, fingerprint=f"fp{n}"), None)[0] for n in range(1, 11)]
    assert len(transport.sent) == 3
    assert [outbox.get(i).status for i in ids[3:]] == ["held"] * 7
    assert notifier.flush(clock.now + timedelta(minutes=5)).digests == []  # the hour is not over yet
    report = notifier.flush(T0.replace(hour=10, minute=1))
    assert report.digests == ["digest:2025-11-24T09:platform@example.com"]
    digest = transport.sent[-1]
    assert digest.to == ("platform@example.com",) and digest.subject.startswith("[DIGEST] 7 job failure notices")
    assert len(transport.sent) == 4
    assert notifier.flush(T0.replace(hour=10, minute=30)).digests == []  # sent once


def test_a_platform_outage_of_300_failures_sends_a_handful_of_emails(outbox, transport, clock):
    notifier = make(outbox, transport, clock, email_max_per_recipient_per_hour=10)
    for n in range(1, 301):
        notifier.notify(record(n, Action.RETRY, job_id=n, fingerprint="same-outage"), None)
    notifier.flush(T0 + timedelta(hours=1))
    assert len(transport.sent) == 11  # ten, then one digest
    assert "290 x" in transport.sent[-1].text


def test_the_cap_counts_per_recipient(outbox, transport, clock):
    notifier = make(outbox, transport, clock, email_max_per_recipient_per_hour=1)
    notifier.notify(record(1, fingerprint="a"), owners_job("a@example.com", "b@example.com"))
    notifier.notify(record(2, fingerprint="b"), owners_job("b@example.com", "c@example.com"))
    assert [m.to for m in transport.sent] == [("a@example.com", "b@example.com"), ("c@example.com",)]
    entry = outbox.get("default:1002:0:diagnosis")
    assert entry.held_recipients == ["b@example.com"] and entry.status == "sent"


def test_the_same_failure_of_the_same_job_again_goes_in_the_digest(outbox, transport, clock):
    notifier = make(outbox, transport, clock)
    notifier.notify(record(1, fingerprint="same"), None)
    clock.now += timedelta(minutes=10)
    notifier.notify(record(2, fingerprint="same"), None)
    assert len(transport.sent) == 1
    assert outbox.get("default:1002:0:diagnosis").detail.endswith("(same failure again)")
    report = notifier.flush(T0 + timedelta(hours=1))
    assert report.digests and "default:1002:0:diagnosis" in outbox.get(report.digests[0]).digest_items


def test_the_same_failure_is_emailed_again_once_the_repeat_window_has_passed(outbox, transport, clock):
    notifier = make(outbox, transport, clock, email_repeat_window_minutes=60)
    notifier.notify(record(1, fingerprint="same"), None)
    clock.now += timedelta(minutes=61)
    notifier.notify(record(2, fingerprint="same"), None)
    assert len(transport.sent) == 2


def test_a_different_failure_of_the_same_job_is_sent_at_once(outbox, transport, clock):
    notifier = make(outbox, transport, clock)
    notifier.notify(record(1, fingerprint="one"), None)
    notifier.notify(record(2, fingerprint="two"), None)
    assert len(transport.sent) == 2


def test_the_same_failure_in_another_job_is_sent_at_once(outbox, transport, clock):
    notifier = make(outbox, transport, clock)
    notifier.notify(record(1, job_id=1, fingerprint="same"), None)
    notifier.notify(record(2, job_id=2, fingerprint="same"), None)
    assert len(transport.sent) == 2


def test_escalations_are_never_held_as_repeats(outbox, transport, clock):
    notifier = make(outbox, transport, clock)
    notifier.notify(record(1, Action.RETRY, fingerprint="same"), None)
    notifier.notify(record(2, Action.ESCALATE, fingerprint="same"), None)
    assert len(transport.sent) == 2


class _UnreachableTable:
    """Every Table operation fails as EntityTable reports an unreachable account."""

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise TransientError(f"table storage unavailable ({name} outbox row): ServiceRequestError")
        return fail


class BrokenOutbox(MemoryOutbox):
    def __init__(self):
        super().__init__()
        self._table = _UnreachableTable()


def test_an_unreachable_outbox_raises_transient_so_the_message_is_retried(transport, clock):
    notifier = make(BrokenOutbox(), transport, clock)
    with pytest.raises(TransientError):
        notifier.notify(record(), None)
    assert transport.sent == []


def test_flush_reports_an_unreachable_outbox_instead_of_raising(transport, clock):
    report = make(BrokenOutbox(), transport, clock).flush(clock.now)
    assert report.errors


# --- the outcome of a resized rerun ---------------------------------------------------------------------------
def test_the_outcome_of_a_resize_is_sent_besides_the_retry_notice_once_each(outbox, transport, clock):
    notifier = make(outbox, transport, clock)
    ended = sample_outcome_record()
    job = owners_job("owner@example.com")

    retry = notifier.notify(ended, job)  # no kind: the decision's own email, as every existing caller does
    outcome = notifier.notify(ended, job, kind=NotificationKind.OUTCOME)
    again = notifier.notify(ended, job, kind=NotificationKind.OUTCOME)

    assert retry == [f"{ended.key}:retry"]
    assert outcome == again == [f"{ended.key}:outcome"]
    assert [m.subject.split(" ")[0] for m in transport.sent] == ["[RETRIED", "[RESOLVED"]
    assert transport.sent[1].to == ("owner@example.com",), "the retry notice's people hear how it ended"
    assert outbox.get(outcome[0]).kind == "outcome"


def test_an_outcome_is_not_held_back_as_a_repeat_of_the_retry_notice(outbox, transport, clock):
    notifier = make(outbox, transport, clock, email_repeat_window_minutes=60)
    ended = sample_outcome_record()
    notifier.notify(ended, None)
    notifier.notify(ended, None, kind=NotificationKind.OUTCOME)
    assert len(transport.sent) == 2

