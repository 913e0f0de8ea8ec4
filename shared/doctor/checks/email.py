"""Email: the configured transport (SMTP: connect, TLS and log in, nothing sent)."""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Iterable
from pathlib import Path

from shared.doctor.context import NOT_READY, READY, SKIPPED, CheckResult, DoctorContext, first_line
from shared.exceptions import ConfigError, SecretError
from shared.secrets import resolve_secret
from shared.settings.docs import DOCS


def check_email(ctx: DoctorContext) -> Iterable[CheckResult]:
    s = ctx.settings
    if not s.email_enabled:
        yield CheckResult("email", SKIPPED, "EMAIL_ENABLED is off: notifications are only recorded",
                          "optional: EMAIL_ENABLED=true and the EMAIL_TRANSPORT settings", required=False)
        return
    problems = s.problems_for("email")
    if problems:
        yield CheckResult(f"email ({s.email_transport})", NOT_READY, "; ".join(map(str, problems)),
                          f"see the Email section of {DOCS}")
        return
    if s.email_transport == "smtp":
        yield _check_smtp(ctx)
    elif s.email_transport == "acs":
        how = "ACS_ENDPOINT with the app's identity" if s.acs_endpoint else "a connection string"
        yield CheckResult("email (acs)", READY, f"settings present ({how}); nothing sent",
                          "send a test: python -m shared email-test", required=False)
    elif s.email_transport == "file":
        directory = Path(s.email_file_dir or ".")
        try:
            directory.mkdir(parents=True, exist_ok=True)
            writable = os.access(directory, os.W_OK)
        except OSError as exc:
            writable, directory = False, Path(f"{directory} ({exc.strerror})")
        yield (CheckResult("email (file)", READY, f"emails are written to {directory}") if writable else
               CheckResult("email (file)", NOT_READY, f"cannot write to {directory}", "fix EMAIL_FILE_DIR"))
    else:
        yield CheckResult(f"email ({s.email_transport})", READY, "notifications are kept in the outbox table only")


def _check_smtp(ctx: DoctorContext) -> CheckResult:
    s = ctx.settings
    name = "email (smtp)"
    where = f"{s.email_smtp_host}:{s.email_smtp_port}"
    try:
        password = resolve_secret(s, ctx.secret_provider(), "email_password")
    except (SecretError, ConfigError) as exc:
        return CheckResult(name, NOT_READY, f"SMTP password: {exc}", "set EMAIL_PASSWORD or its secret")
    context = ctx.smtp_ssl_context or ssl.create_default_context()
    steps = []
    try:
        if s.email_smtp_security == "ssl":
            server: smtplib.SMTP = smtplib.SMTP_SSL(s.email_smtp_host, s.email_smtp_port, timeout=ctx.timeout,
                                                    context=context)
        else:
            server = smtplib.SMTP(s.email_smtp_host, s.email_smtp_port, timeout=ctx.timeout)
        with server:
            server.ehlo()
            steps.append("EHLO")
            if s.email_smtp_security == "starttls":
                server.starttls(context=context)
                server.ehlo()
                steps.append("STARTTLS")
            username = s.email_smtp_username or s.email_sender
            if password and username:
                server.login(username, password)
                steps.append(f"login as {username}")
    except smtplib.SMTPAuthenticationError as exc:
        return CheckResult(name, NOT_READY, f"{where}: login refused ({exc.smtp_code})",
                           "check EMAIL_SMTP_USERNAME and the SMTP password")
    except (smtplib.SMTPException, OSError) as exc:
        done = f" after {', '.join(steps)}" if steps else ""
        return CheckResult(name, NOT_READY, f"{where}{done}: {type(exc).__name__}: {first_line(exc)}",
                           "check EMAIL_SMTP_HOST, EMAIL_SMTP_PORT and EMAIL_SMTP_SECURITY")
    return CheckResult(name, READY, f"{where}: {', '.join(steps)} ok; nothing sent")
