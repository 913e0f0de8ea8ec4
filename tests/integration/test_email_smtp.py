"""SMTP against a real SMTP server (aiosmtpd): plain relay, STARTTLS + login, implicit TLS, and refusals."""

from __future__ import annotations

import socket
import time

import pytest

from shared.notify import build_transport, kind_for
from shared.notify.exceptions import SendFailed
from shared.notify.notifier import Notifier
from shared.notify.outbox import MemoryOutbox
from shared.notify.render import render
from shared.notify.sample import sample_record
from shared.notify.transports.base import OutgoingEmail
from shared.notify.transports.smtp import SmtpTransport
from shared.settings import Settings
from shared.taxonomy import Action
from localdev.ports import free_port
from tests.fixtures.email import SMTP_PASSWORD, SMTP_USER


def sample_email(to=("owner@example.com",), sender=SMTP_USER) -> OutgoingEmail:
    record = sample_record(Action.SEND_EMAIL)
    email = render(record, kind_for(record), Settings())
    return OutgoingEmail(id="default:911:0:diagnosis", sender=sender, to=to, subject=email.subject,
                         text=email.text, html=email.html, sender_name="Databricks AI agent")


def smtp_settings(server, **values) -> Settings:
    return Settings(**{"email_enabled": True, "email_transport": "smtp", "email_smtp_host": server.host,
                       "email_smtp_port": server.port, "email_sender": SMTP_USER, **values})


def test_a_plain_relay_gets_a_multipart_message_with_both_bodies(smtp_server):
    result = SmtpTransport(smtp_server.host, smtp_server.port, security="none").send(sample_email())
    assert result.status == "sent"
    [got] = smtp_server.received
    assert got.mail_from == SMTP_USER and got.rcpt_tos == ["owner@example.com"]
    assert got.message.get_content_type() == "multipart/alternative"
    assert got.message["Subject"] == "[FAILED · permission] nightly_etl — PERMISSION_DENIED on main.sales"
    assert "<script>alert('printed by a notebook')</script>" in got.part("plain")
    assert "&lt;script&gt;" in got.part("html") and "<script>" not in got.part("html")


def test_messages_carry_a_stable_message_id_and_say_they_are_automatic(smtp_server):
    transport = SmtpTransport(smtp_server.host, smtp_server.port, security="none")
    transport.send(sample_email())
    transport.send(sample_email())
    first, second = (r.message for r in smtp_server.received)
    assert first["Message-ID"] == second["Message-ID"]
    assert first["Auto-Submitted"] == "auto-generated"
    assert first["X-Agent-Notification-Id"] == "default:911:0:diagnosis"
    assert first["From"] == f"Databricks AI agent <{SMTP_USER}>"


def test_starttls_and_login_from_the_settings(smtp_starttls_server, smtp_client_tls):
    settings = smtp_settings(smtp_starttls_server, email_password=SMTP_PASSWORD)
    transport = build_transport(settings, ssl_context=smtp_client_tls)
    transport.send(sample_email())
    [got] = smtp_starttls_server.received
    assert got.authenticated_as == SMTP_USER  # EMAIL_SMTP_USERNAME defaults to the sender


def test_a_refused_login_is_a_retryable_failure_that_says_what_to_check(smtp_starttls_server, smtp_client_tls):
    settings = smtp_settings(smtp_starttls_server, email_password="wrong password")
    transport = build_transport(settings, ssl_context=smtp_client_tls)
    started = time.monotonic()
    with pytest.raises(SendFailed, match="login refused: check EMAIL_SMTP_USERNAME and EMAIL_PASSWORD.*535"):
        transport.send(sample_email())
    assert time.monotonic() - started < 5
    assert smtp_starttls_server.received == []


def test_sending_without_tls_to_a_server_that_requires_it_fails_clearly(smtp_starttls_server):
    transport = SmtpTransport(smtp_starttls_server.host, smtp_starttls_server.port, security="none")
    with pytest.raises(SendFailed, match="smtp 127.0.0.1"):
        transport.send(sample_email())
    assert smtp_starttls_server.received == []


def test_an_untrusted_certificate_is_refused(smtp_starttls_server):
    transport = SmtpTransport(smtp_starttls_server.host, smtp_starttls_server.port, security="starttls",
                              username=SMTP_USER, password=lambda: SMTP_PASSWORD)
    with pytest.raises(SendFailed, match="TLS failed"):
        transport.send(sample_email())


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls_with_login(smtp_ssl_server, smtp_client_tls):
    settings = smtp_settings(smtp_ssl_server, email_smtp_security="ssl", email_password=SMTP_PASSWORD)
    build_transport(settings, ssl_context=smtp_client_tls).send(sample_email())
    assert smtp_ssl_server.received[0].authenticated_as == SMTP_USER


def test_a_server_that_never_answers_times_out():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", free_port()))
        silent.listen()
        transport = SmtpTransport("127.0.0.1", silent.getsockname()[1], security="none", timeout=0.5)
        started = time.monotonic()
        with pytest.raises(SendFailed, match="timed out"):
            transport.send(sample_email())
        assert time.monotonic() - started < 3


def test_nothing_listening_is_a_retryable_failure():
    with pytest.raises(SendFailed, match="network error"):
        SmtpTransport("127.0.0.1", free_port(), security="none", timeout=2).send(sample_email())


def test_a_refused_login_leaves_the_decision_alone_and_the_email_in_the_outbox(smtp_starttls_server, smtp_client_tls):
    settings = smtp_settings(smtp_starttls_server, email_password="wrong password",
                             email_default_recipients=["owner@example.com"])
    outbox = MemoryOutbox()
    notifier = Notifier(settings, outbox, build_transport(settings, ssl_context=smtp_client_tls))
    ids = notifier.notify(sample_record(Action.SEND_EMAIL), None)
    entry = outbox.get(ids[0])
    assert entry.status == "pending" and "535" in entry.last_error
    assert entry.html and entry.subject  # kept, ready for the next try
