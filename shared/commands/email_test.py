"""`python -m shared email-test --to ADDRESS`: send a sample diagnosis through the configured transport.

The sample is a realistic permission failure whose error text holds <, & and a <script> tag, so the
operator also sees that run output arrives as text. Goes straight to the transport (no outbox, no hourly
cap), and says what happened: where it went, how long it took, or why it failed and what to check.
Exit codes: 0 sent, 1 not sent, 2 bad arguments or settings.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from typing import Any

from shared.exceptions import AgentError, ConfigError
from shared.notify.exceptions import EmailError, SendRejected
from shared.notify.kinds import NotificationKind, kind_for, outcome_kind
from shared.notify.recipients import clean
from shared.taxonomy import Action

_SAMPLE_ACTION = {
    NotificationKind.DIAGNOSIS: (Action.SEND_EMAIL, "act"),
    NotificationKind.ESCALATION: (Action.ESCALATE, "act"),
    NotificationKind.RETRY: (Action.RETRY_WITH_NEW_PARAMS, "act"),
    NotificationKind.OBSERVE: (Action.RETRY_WITH_NEW_PARAMS, "observe"),
}

_HINTS = {
    "smtp": "check EMAIL_SMTP_HOST / EMAIL_SMTP_PORT / EMAIL_SMTP_SECURITY (587: starttls, 465: ssl), "
    "EMAIL_SMTP_USERNAME (default: EMAIL_SENDER) and EMAIL_PASSWORD, and that the server lets EMAIL_SENDER send",
    "acs": "check ACS_CONNECTION_STRING (or ACS_ENDPOINT and the identity's role on the ACS resource), and that "
    "EMAIL_SENDER is a MailFrom address of a domain connected to the resource",
    "file": "check that EMAIL_FILE_DIR is writable",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", action="append", required=True, metavar="ADDRESS",
                        help="where to send the sample (repeat for several)")
    parser.add_argument("--kind", choices=[k.value for k in NotificationKind], default=NotificationKind.DIAGNOSIS.value,
                        help="which email to send (default: diagnosis)")
    parser.add_argument("--dry-run", action="store_true", help="render the email and print it; send nothing")


def run(args: argparse.Namespace) -> int:
    from shared.notify.build import MisconfiguredTransport, build_transport, sender_for
    from shared.notify.render import render
    from shared.notify.sample import sample_outcome_record, sample_record
    from shared.notify.transports.base import OutgoingEmail
    from shared.settings import load_settings

    to, invalid = clean(args.to)
    if invalid or not to:
        print(f"not a valid address: {', '.join(invalid) or '(none given)'}", file=sys.stderr)
        return 2
    try:
        settings = load_settings(require=())  # only email matters here; its gaps are reported below
    except ConfigError as exc:
        print(f"settings: {exc}", file=sys.stderr)
        return 2

    transport = build_transport(settings, secrets=_secrets(settings))
    sender = sender_for(settings, transport)
    print(f"transport: {transport.describe()}")
    print(f"from:      {sender or '(EMAIL_SENDER is not set)'}")
    print(f"to:        {', '.join(to)}")
    if not settings.email_enabled:
        print("note:      EMAIL_ENABLED is false, so the agent itself only records notifications; "
              "this test sends anyway")

    kind = NotificationKind(args.kind)
    if kind is NotificationKind.OUTCOME:  # not a decision's own email: how its resized rerun ended
        record = sample_outcome_record()
        assert outcome_kind(record) is kind
    else:
        action, mode = _SAMPLE_ACTION[kind]
        record = sample_record(action, mode=mode)
        assert kind_for(record) is kind
    email = render(record, kind, settings)
    print(f"subject:   {email.subject}")
    if args.dry_run:
        print("\n" + email.text)
        return 0
    if isinstance(transport, MisconfiguredTransport):
        print(f"NOT SENT: {transport.problem}", file=sys.stderr)
        return 1
    if not sender:
        print("NOT SENT: EMAIL_SENDER is not set", file=sys.stderr)
        return 1

    message = OutgoingEmail(
        id=f"email-test:{uuid.uuid4()}", sender=sender, to=tuple(to), subject=email.subject, text=email.text,
        html=email.html, sender_name=settings.email_sender_name,
    )
    started = time.monotonic()
    try:
        result = transport.send(message)
    except EmailError as exc:
        elapsed = time.monotonic() - started
        verdict = "refused for good" if isinstance(exc, SendRejected) else "failed (the agent would retry it)"
        print(f"NOT SENT after {elapsed:.1f}s, {verdict}: {exc}", file=sys.stderr)
        hint = _HINTS.get(transport.name)
        if hint:
            print(f"hint:      {hint}", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - started
    verb = "recorded (not sent)" if result.status == "recorded" else "SENT"
    print(f"{verb} in {elapsed:.1f}s: {result.detail}" + (f" [{result.provider_id}]" if result.provider_id else ""))
    return 0


def _secrets(settings: Any) -> Any:
    """The Key Vault (or environment) secret provider, when this build has one; else None (settings only)."""
    try:
        from shared.secrets import build_secret_provider
    except ImportError:
        return None
    try:
        return build_secret_provider(settings)
    except AgentError as exc:
        print(f"warning:   secrets unavailable ({exc}); using the settings only", file=sys.stderr)
        return None
