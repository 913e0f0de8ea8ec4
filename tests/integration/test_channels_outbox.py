"""Channel messages go through the outbox like emails: sent once, retried by flush after a failure, resolved
once per chain, and the routing key never stored."""

from __future__ import annotations

from datetime import timedelta

import pytest

from localdev.fakes.chat_webhooks import ROUTING_KEY, ChatWebhooks
from shared.notify import Notifier
from shared.notify.channels.route import parse_routes
from shared.notify.channels.send import ChannelSender
from shared.notify.outbox import MemoryOutbox
from shared.notify.sample import sample_record
from shared.settings import Settings
from shared.taxonomy import Action
from tests.unit.test_notify_notifier import Clock, RecordingTransport, owners_job


@pytest.fixture(scope="module")
def fake():
    with ChatWebhooks() as service:
        yield service


@pytest.fixture
def setup(fake):
    fake.received.clear()
    fake.open_incidents.clear()
    outbox, clock, transport = MemoryOutbox(), Clock(), RecordingTransport()
    settings = Settings(email_enabled=True, email_sender="agent@example.com",
                        email_default_recipients=["platform@example.com"])
    channels = {"teams": ChannelSender("teams", url=lambda: fake.teams_url),
                "pagerduty": ChannelSender("pagerduty", url=lambda: fake.pagerduty_url, routing_key=lambda: ROUTING_KEY)}
    notifier = Notifier(settings, outbox, transport, clock=clock, channels=channels,
                        routes=parse_routes("escalation=pagerduty,teams;resolved=pagerduty"))
    return notifier, outbox, clock, transport


def escalation():
    record = sample_record(Action.ESCALATE, key_suffix="x")
    record.key, record.chain_id, record.run_id = "default:77:2", "default:75", 77
    return record


def test_an_escalation_reaches_every_routed_channel_once_beside_the_email(setup, fake):
    notifier, outbox, _, transport = setup
    ids = notifier.notify(escalation(), owners_job("owner@example.com"))
    assert ids == ["default:75:escalation", "default:75:escalation:pagerduty", "default:75:escalation:teams"]
    assert len(transport.sent) == 1 and len(fake.received["teams"]) == 1 and len(fake.received["pagerduty"]) == 1
    assert notifier.notify(escalation(), owners_job("owner@example.com")) == ids  # a redelivery sends nothing
    assert len(fake.received["teams"]) == 1 and len(fake.received["pagerduty"]) == 1
    stored = outbox.get("default:75:escalation:pagerduty")
    assert stored.status == "sent" and ROUTING_KEY not in str(stored.to_entity())


def test_a_diagnosis_is_not_routed_to_chat_by_default(setup, fake):
    notifier, _, _, _ = setup
    record = sample_record(Action.SEND_EMAIL, key_suffix="d")
    assert notifier.notify(record, owners_job("owner@example.com")) == [f"{record.key}:diagnosis"]
    assert not fake.received["teams"] and not fake.received["pagerduty"]


def test_a_failed_send_waits_in_the_outbox_and_flush_sends_it_once(setup, fake):
    notifier, outbox, clock, _ = setup
    fake.fail_next(503, times=2)  # both channels fail now
    notifier.notify(escalation(), owners_job("owner@example.com"))
    assert not fake.received["teams"] and not fake.received["pagerduty"]
    assert outbox.get("default:75:escalation:teams").status == "pending"
    clock.now += timedelta(minutes=10)
    report = notifier.flush()
    assert {"default:75:escalation:teams", "default:75:escalation:pagerduty"} <= set(report.sent)
    assert len(fake.received["teams"]) == 1 and len(fake.received["pagerduty"]) == 1
    clock.now += timedelta(minutes=10)
    notifier.flush()
    assert len(fake.received["teams"]) == 1  # sent is final


def test_a_refused_channel_is_marked_failed_not_retried(setup, fake):
    notifier, outbox, clock, _ = setup
    notifier.channels["pagerduty"] = ChannelSender("pagerduty", url=lambda: fake.pagerduty_url,
                                                   routing_key=lambda: "not-a-routing-key")
    notifier.notify(escalation(), owners_job("owner@example.com"))
    assert outbox.get("default:75:escalation:pagerduty").status == "failed"


def test_the_chain_recovering_resolves_the_pagerduty_incident_once(setup, fake):
    notifier, _, _, _ = setup
    record = escalation()
    notifier.notify(record, owners_job("owner@example.com"))
    assert "default:75" in fake.open_incidents
    assert notifier.resolve(record, owners_job(), "the rerun succeeded") == ["default:75:resolved:pagerduty"]
    notifier.resolve(record, owners_job(), "the rerun succeeded")
    assert "default:75" not in fake.open_incidents
    assert [e["event_action"] for e in fake.received["pagerduty"]] == ["trigger", "resolve"]
