"""The notifier on a real outbox table (Azurite): one email per decision across workers, retries, digests."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from azure.data.tables import TableServiceClient

from shared.notify import build_notifier
from shared.notify.exceptions import SendFailed
from shared.notify.outbox import TableOutbox
from shared.notify.sample import sample_record
from shared.notify.transports.base import EmailTransport, OutgoingEmail, SendResult
from shared.settings import Settings
from shared.taxonomy import Action

T0 = datetime(2025, 11, 24, 9, 41, tzinfo=timezone.utc)


class ScriptedTransport(EmailTransport):
    """Keeps what it sends (thread-safe); can fail on demand."""

    name = "memory"

    def __init__(self) -> None:
        self.sent: list[OutgoingEmail] = []
        self.fail = 0
        self._lock = threading.Lock()

    def _send(self, email: OutgoingEmail) -> SendResult:
        if self.fail:
            self.fail -= 1
            raise SendFailed("scripted outage")
        with self._lock:
            self.sent.append(email)
        return SendResult(self.name)


@pytest.fixture
def service(storage_connection_string):
    return TableServiceClient.from_connection_string(storage_connection_string)


def notifier_for(service, table, transport, **values):
    settings = Settings(**{"email_enabled": True, "email_transport": "table", "email_sender": "agent@example.com",
                           "email_default_recipients": ["owner@example.com"], "outbox_table": table, **values})
    notifier = build_notifier(settings, table_service_client=service)
    notifier.transport = transport
    notifier.clock = lambda: T0
    return notifier


def big_record(n: int = 1, action: Action = Action.SEND_EMAIL):
    record = sample_record(action, key_suffix=f"r{n}")
    record.key, record.run_id, record.chain_id = f"default:{98765432100 + n}:0", 98765432100 + n, f"default:{n}"
    record.job_id = 1098765432101234  # Databricks ids outgrow 32 bits
    record.fingerprint = f"fp{n}"
    return record


def test_the_outbox_table_is_created_and_the_email_kept_in_it(service, unique_name):
    transport = ScriptedTransport()
    notifier = notifier_for(service, unique_name, transport)
    [nid] = notifier.notify(big_record(), None)
    entry = TableOutbox(service.get_table_client(unique_name)).get(nid)
    assert entry.status == "sent" and entry.job_id == 1098765432101234
    assert entry.html == transport.sent[0].html


def test_a_huge_error_text_still_fits_in_one_entity(service, unique_name):
    record = big_record()
    record.excerpt = "\n".join(f"{i} " + "é" * 400 for i in range(2_000))
    record.evidence = ["<" * 5_000] * 50
    record.analysis.root_cause = "&" * 50_000
    [nid] = notifier_for(service, unique_name, ScriptedTransport()).notify(record, None)
    entity = service.get_table_client(unique_name).get_entity("notification", nid)
    assert len(entity["body"]) < 64 * 1024


def test_two_workers_delivering_the_same_decision_send_one_email(service, unique_name):
    transport = ScriptedTransport()
    workers = [notifier_for(service, unique_name, transport) for _ in range(4)]
    record = big_record()
    results: list[list[str]] = []
    threads = [threading.Thread(target=lambda w=w: results.append(w.notify(record, None))) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({tuple(r) for r in results}) == 1
    assert len(transport.sent) == 1


def test_a_failed_send_is_retried_by_the_timer(service, unique_name):
    transport = ScriptedTransport()
    transport.fail = 1
    notifier = notifier_for(service, unique_name, transport)
    [nid] = notifier.notify(big_record(), None)
    report = notifier.flush(T0 + timedelta(minutes=1))
    assert report.sent == [nid] and len(transport.sent) == 1


def test_the_hourly_cap_and_the_digest_on_the_table(service, unique_name):
    transport = ScriptedTransport()
    notifier = notifier_for(service, unique_name, transport, email_max_per_recipient_per_hour=2)
    for n in range(1, 6):
        notifier.notify(big_record(n, Action.RETRY), None)
    assert len(transport.sent) == 2
    report = notifier.flush(T0 + timedelta(hours=1))
    assert report.digests == ["digest:2025-11-24T09:owner@example.com"]
    assert transport.sent[-1].subject.startswith("[DIGEST] 3 job failure notices")
    assert notifier.flush(T0 + timedelta(hours=1, minutes=5)).digests == []
