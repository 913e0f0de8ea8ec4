"""EMAIL_ALLOWED_DOMAINS: addresses a job names (on_failure, the tag) outside the allowed domains are dropped;
the drop is recorded on the decision and shown to the default recipients, who get the email instead."""

from __future__ import annotations

import pytest

from shared.decision import DecisionRecord
from shared.notify import NotificationKind
from shared.notify.recipients import in_domains, resolve_recipients
from shared.settings import Settings
from shared.store import from_entity, to_entity
from tests.unit.test_notify_notifier import Clock, RecordingTransport, make, owners_job, record
from tests.unit.test_notify_recipients import job

ALLOWED = {"email_allowed_domains": "contoso.com", "email_default_recipients": ["oncall@contoso.com"]}


def test_a_subdomain_is_in_its_parent_and_a_look_alike_is_not():
    assert in_domains("a@contoso.com", ["contoso.com"]) and in_domains("a@eu.contoso.com", ["contoso.com"])
    assert not in_domains("a@evilcontoso.com", ["contoso.com"])
    assert not in_domains("a@contoso.com.evil.example", ["contoso.com"])


def test_outside_addresses_are_dropped_and_the_defaults_added():
    got = resolve_recipients(NotificationKind.DIAGNOSIS, job(["owner@contoso.com", "leak@gmail.com"]),
                             Settings(**ALLOWED))
    assert got.to == ("owner@contoso.com", "oncall@contoso.com")
    assert got.dropped == ("leak@gmail.com",) and got.source == "on_failure"


def test_a_tag_naming_only_outside_addresses_falls_back_to_the_defaults():
    got = resolve_recipients(NotificationKind.DIAGNOSIS, job([], {"ai_agent_notify": "x@evil.example,y@evil.example"}),
                             Settings(**ALLOWED))
    assert got.to == ("oncall@contoso.com",) and got.source == "default"
    assert got.dropped == ("x@evil.example", "y@evil.example")


def test_without_the_setting_every_domain_is_allowed():
    got = resolve_recipients(NotificationKind.DIAGNOSIS, job(["leak@gmail.com"]),
                             Settings(email_default_recipients=["oncall@contoso.com"]))
    assert got.to == ("leak@gmail.com",) and got.dropped == ()


@pytest.fixture
def sent():
    from shared.notify.outbox import MemoryOutbox

    outbox, transport = MemoryOutbox(), RecordingTransport()
    notifier = make(outbox, transport, Clock(), **ALLOWED)
    decision = record()
    notifier.notify(decision, owners_job("owner@contoso.com", "leak@gmail.com"))
    return decision, transport.sent


def test_the_email_goes_to_allowed_and_default_addresses_only(sent):
    _, emails = sent
    assert [m.to for m in emails] == [("owner@contoso.com", "oncall@contoso.com")]


def test_the_drop_is_shown_in_both_parts_and_recorded_on_the_decision(sent):
    decision, emails = sent
    # Shown, and (an outside domain) not clickable.
    assert "leak@gmail[.]com" in emails[0].text and "EMAIL_ALLOWED_DOMAINS" in emails[0].text
    assert "leak@gmail[.]com" in emails[0].html
    assert decision.dropped_recipients == ["leak@gmail.com"]
    stored = from_entity(to_entity(decision))
    assert isinstance(stored, DecisionRecord) and stored.dropped_recipients == ["leak@gmail.com"]


def test_a_bad_domain_setting_is_refused():
    with pytest.raises(ValueError, match="not a domain name"):
        Settings(email_allowed_domains="contoso.com, not a domain")
