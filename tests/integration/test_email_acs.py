"""ACS Email with the real EmailClient against the local fake of its REST protocol (HMAC checked, 202 + polling)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from shared.notify import build_transport, kind_for
from shared.notify.exceptions import SendFailed, SendRejected
from shared.notify.notifier import Notifier
from shared.notify.outbox import MemoryOutbox
from shared.notify.render import render
from shared.notify.sample import sample_record
from shared.notify.transports.acs import AcsTransport
from shared.notify.transports.base import OutgoingEmail
from shared.settings import Settings
from shared.taxonomy import Action
from tests.fixtures.keyvault import FakeCredential

SENDER = "DoNotReply@agent.example.com"


def sample_email(notification_id="default:911:0:diagnosis", to=("owner@example.com",)) -> OutgoingEmail:
    record = sample_record(Action.SEND_EMAIL)
    email = render(record, kind_for(record), Settings())
    return OutgoingEmail(id=notification_id, sender=SENDER, to=to, subject=email.subject, text=email.text,
                         html=email.html)


def acs_settings(**values) -> Settings:
    return Settings(**{"email_enabled": True, "email_transport": "acs", "email_sender": SENDER,
                       "acs_poll_interval_seconds": 0, "email_default_recipients": ["owner@example.com"], **values})


@pytest.fixture
def transport(acs_fake, acs_client_kwargs):
    settings = acs_settings(acs_connection_string=acs_fake.connection_string)
    return build_transport(settings, acs_client_kwargs=acs_client_kwargs)


def test_a_send_is_signed_accepted_and_confirmed(acs_fake, transport):
    result = transport.send(sample_email())
    assert result.status == "sent" and "Succeeded" in result.detail
    [sent] = acs_fake.sent
    assert sent.auth == "hmac"  # the fake recomputed the HMAC-SHA256 signature and it matched
    assert sent.to == ["owner@example.com"]
    assert sent.body["senderAddress"] == SENDER
    assert sent.subject == "[FAILED · permission] nightly_etl — PERMISSION_DENIED on main.sales"
    assert [(m, s) for m, _, s in acs_fake.requests] == [("POST", 202), ("GET", 200)]


def test_the_html_is_escaped_and_the_text_is_not(acs_fake, transport):
    transport.send(sample_email())
    [sent] = acs_fake.sent
    assert "&lt;script&gt;" in sent.html and "<script>" not in sent.html
    assert "<script>alert('printed by a notebook')</script>" in sent.text


def test_a_resend_of_the_same_notification_is_the_same_acs_operation(acs_fake, transport):
    first = transport.send(sample_email())
    second = transport.send(sample_email())
    assert first.provider_id == second.provider_id
    assert len(acs_fake.sent) == 1


def test_a_bounce_is_refused_for_good(acs_fake, transport):
    acs_fake.bounce.add("gone@example.com")
    with pytest.raises(SendRejected, match="InvalidRecipient"):
        transport.send(sample_email(to=("gone@example.com",)))


@pytest.mark.parametrize(("status", "code"), [(429, "TooManyRequests"), (503, "ServiceUnavailable")])
def test_throttling_and_outages_are_retryable(acs_fake, transport, status, code):
    acs_fake.fail_next(status, code)
    with pytest.raises(SendFailed, match=f"HTTP {status} {code}"):
        transport.send(sample_email())


def test_a_malformed_request_is_refused_for_good(acs_fake, transport):
    acs_fake.fail_next(400, "BadRequest", "senderAddress is not a verified domain")
    with pytest.raises(SendRejected, match="not a verified domain"):
        transport.send(sample_email())


def test_a_wrong_access_key_fails_the_signature_check(acs_fake, acs_client_kwargs):
    wrong = acs_fake.connection_string.replace(acs_fake.access_key, "d3JvbmcgYnV0IHZhbGlkIGJhc2U2NA==")
    transport = build_transport(acs_settings(acs_connection_string=wrong), acs_client_kwargs=acs_client_kwargs)
    with pytest.raises(SendFailed, match="HTTP 401"):
        transport.send(sample_email())
    assert acs_fake.sent == []


def test_the_endpoint_with_an_identity_sends_a_bearer_token(acs_fake, acs_client_kwargs):
    credential = FakeCredential("acs-token")
    settings = acs_settings(acs_endpoint=acs_fake.endpoint)
    transport = build_transport(settings, acs_client_kwargs=acs_client_kwargs, acs_credential=credential)
    transport.send(sample_email())
    assert acs_fake.sent[0].auth == "bearer"
    assert credential.requests[0][0] == ("https://communication.azure.com//.default",)


def test_the_connection_string_can_come_from_key_vault(acs_fake, acs_client_kwargs):
    class Secrets:
        def get(self, name: str) -> str:
            assert name == "acs-conn"
            return acs_fake.connection_string

    settings = acs_settings(acs_connection_string_secret_name="acs-conn")
    build_transport(settings, secrets=Secrets(), acs_client_kwargs=acs_client_kwargs).send(sample_email())
    assert len(acs_fake.sent) == 1


def test_an_unreadable_secret_is_a_retryable_send_failure(acs_client_kwargs):
    from shared.exceptions import SecretError

    class Secrets:
        def get(self, name: str) -> str:
            raise SecretError(f"secret {name!r}: vault unreachable")

    settings = acs_settings(acs_connection_string_secret_name="acs-conn")
    transport = build_transport(settings, secrets=Secrets(), acs_client_kwargs=acs_client_kwargs)
    with pytest.raises(SendFailed, match="vault unreachable"):
        transport.send(sample_email())


def test_an_outage_keeps_the_email_pending_until_flush_delivers_it(acs_fake, transport):
    outbox = MemoryOutbox()
    notifier = Notifier(acs_settings(), outbox, transport)
    acs_fake.fail_next(503, "ServiceUnavailable")
    record = sample_record(Action.SEND_EMAIL)
    [nid] = notifier.notify(record, None)
    assert outbox.get(nid).status == "pending" and acs_fake.sent == []
    report = notifier.flush(notifier.clock() + timedelta(minutes=2))
    assert report.sent == [nid]
    assert outbox.get(nid).provider_id == acs_fake.sent[0].operation_id


def test_without_a_connection_string_or_endpoint_every_send_says_what_is_missing():
    transport = build_transport(acs_settings())
    with pytest.raises(SendFailed, match="ACS_CONNECTION_STRING"):
        transport.send(sample_email())


def test_the_acs_client_is_built_on_the_first_send_not_before(acs_fake, acs_client_kwargs):
    transport = AcsTransport(connection_string=lambda: pytest.fail("read too early"), client_kwargs=acs_client_kwargs)
    assert transport.describe() == "acs (connection string)"


def test_a_send_acs_has_accepted_but_not_confirmed_in_time_counts_as_sent(acs_fake, acs_client_kwargs):
    acs_fake.running_polls = 2
    settings = acs_settings(acs_connection_string=acs_fake.connection_string, acs_send_timeout_seconds=0.3)
    started = time.monotonic()
    result = build_transport(settings, acs_client_kwargs=acs_client_kwargs).send(sample_email())
    assert time.monotonic() - started < 2
    assert result.status == "sent" and "accepted by ACS; still" in result.detail
    assert len(acs_fake.sent) == 1  # a retry would risk a second email; ACS has this one


def test_a_resend_after_an_attempt_that_reached_acs_looks_the_operation_up_and_sends_nothing(acs_fake, transport):
    from dataclasses import replace

    transport.send(sample_email())  # reached ACS; the worker died before the outbox said so
    again = transport.send(replace(sample_email(), attempt=2))

    assert "not sent again" in again.detail and len(acs_fake.sent) == 1
    assert [m for m, _, _ in acs_fake.requests] == ["POST", "GET", "GET"]  # send, its poll, the look-up


def test_a_resend_after_an_attempt_that_never_reached_acs_sends_once(acs_fake, transport):
    from dataclasses import replace

    result = transport.send(replace(sample_email(), attempt=2))

    assert result.status == "sent" and len(acs_fake.sent) == 1
    [sent] = acs_fake.sent
    assert sent.headers.get("repeatability-request-id") and sent.headers.get("repeatability-first-sent")
