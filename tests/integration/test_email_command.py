"""`python -m shared email-test --to ADDRESS`: one command that says whether the email setup works."""

from __future__ import annotations

import pytest

from shared.__main__ import main
from tests.fixtures.email import SMTP_PASSWORD, SMTP_USER

EMAIL_VARIABLES = ("EMAIL_", "ACS_", "KEY_VAULT_URL", "FEEDBACK_URL")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    import os

    for name in list(os.environ):
        if name.upper().startswith(EMAIL_VARIABLES):
            monkeypatch.delenv(name)


def test_smtp_sends_the_sample_and_says_so(monkeypatch, capsys, smtp_server):
    monkeypatch.setenv("EMAIL_TRANSPORT", "smtp")
    monkeypatch.setenv("EMAIL_SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("EMAIL_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("EMAIL_SMTP_SECURITY", "none")
    monkeypatch.setenv("EMAIL_SENDER", SMTP_USER)
    assert main(["email-test", "--to", "ops@example.com"]) == 0
    out = capsys.readouterr().out
    assert "SENT in" in out and "subject:   [FAILED · permission] nightly_etl" in out
    [got] = smtp_server.received
    assert got.rcpt_tos == ["ops@example.com"]
    assert "&lt;script&gt;" in got.part("html") and "amount &lt; 0 &amp; region" in got.part("html")


def test_a_refused_login_is_reported_with_what_to_check(monkeypatch, capsys, smtp_starttls_server, tls_files):
    monkeypatch.setenv("SSL_CERT_FILE", tls_files.cert)  # the system trust store, as far as this test goes
    monkeypatch.setenv("EMAIL_TRANSPORT", "smtp")
    monkeypatch.setenv("EMAIL_SMTP_HOST", smtp_starttls_server.host)
    monkeypatch.setenv("EMAIL_SMTP_PORT", str(smtp_starttls_server.port))
    monkeypatch.setenv("EMAIL_SENDER", SMTP_USER)
    monkeypatch.setenv("EMAIL_PASSWORD", "not the password")
    assert main(["email-test", "--to", "ops@example.com"]) == 1
    err = capsys.readouterr().err
    assert "NOT SENT" in err and "login refused" in err and "535" in err
    assert "hint:" in err
    assert "not the password" not in err


def test_starttls_with_the_right_password_sends(monkeypatch, capsys, smtp_starttls_server, tls_files):
    monkeypatch.setenv("SSL_CERT_FILE", tls_files.cert)
    monkeypatch.setenv("EMAIL_TRANSPORT", "smtp")
    monkeypatch.setenv("EMAIL_SMTP_HOST", smtp_starttls_server.host)
    monkeypatch.setenv("EMAIL_SMTP_PORT", str(smtp_starttls_server.port))
    monkeypatch.setenv("EMAIL_SENDER", SMTP_USER)
    monkeypatch.setenv("EMAIL_PASSWORD", SMTP_PASSWORD)
    assert main(["email-test", "--to", "ops@example.com", "--kind", "escalation"]) == 0
    assert smtp_starttls_server.received[0].message["Subject"].startswith("[ESCALATED")


def test_acs_sends_through_the_real_client(monkeypatch, capsys, acs_fake, tls_files):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_files.cert)
    monkeypatch.setenv("EMAIL_TRANSPORT", "acs")
    monkeypatch.setenv("ACS_CONNECTION_STRING", acs_fake.connection_string)
    monkeypatch.setenv("ACS_POLL_INTERVAL_SECONDS", "0")
    monkeypatch.setenv("EMAIL_SENDER", "DoNotReply@agent.example.com")
    assert main(["email-test", "--to", "ops@example.com"]) == 0
    out = capsys.readouterr().out
    assert "acs (connection string)" in out and "Succeeded" in out
    assert acs_fake.access_key not in out
    assert acs_fake.sent[0].to == ["ops@example.com"]


def test_the_file_transport_writes_files_a_person_can_open(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("EMAIL_TRANSPORT", "file")
    monkeypatch.setenv("EMAIL_FILE_DIR", str(tmp_path))
    assert main(["email-test", "--to", "ops@example.com", "--kind", "retry"]) == 0
    assert len(list(tmp_path.glob("*.eml"))) == 1
    [html] = tmp_path.glob("*.html")
    assert "workers 4 → 8" in html.read_text(encoding="utf-8")


def test_a_missing_setting_is_named(monkeypatch, capsys):
    monkeypatch.setenv("EMAIL_TRANSPORT", "smtp")
    monkeypatch.setenv("EMAIL_SENDER", SMTP_USER)
    assert main(["email-test", "--to", "ops@example.com"]) == 1
    assert "EMAIL_SMTP_HOST is not set" in capsys.readouterr().err


def test_an_invalid_address_is_refused_before_anything_is_sent(capsys):
    assert main(["email-test", "--to", "ops@example.com\r\nBcc: x@example.com"]) == 2


def test_dry_run_prints_the_email_and_sends_nothing(monkeypatch, capsys):
    monkeypatch.setenv("EMAIL_TRANSPORT", "smtp")
    assert main(["email-test", "--to", "ops@example.com", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "WHAT TO DO" in out and "SENT" not in out


def test_the_outcome_sample_says_which_size_worked(monkeypatch, capsys):
    monkeypatch.setenv("EMAIL_TRANSPORT", "smtp")
    assert main(["email-test", "--to", "ops@example.com", "--kind", "outcome", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "[RESOLVED · resource] nightly_etl — succeeded on Standard_DS4_v2 (job cluster reverted)" in out
    assert "make the change permanent" in " ".join(out.split())
