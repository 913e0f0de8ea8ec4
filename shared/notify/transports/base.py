"""What every email transport shares: the message it is given, the answer it returns, and error wrapping.

`EmailTransport.send` validates the message and turns anything a provider lets escape into SendFailed, so a
broken transport can never fail a decision. Providers implement `_send` (and `describe` for email-test).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from datetime import datetime, timezone
from typing import Literal

from shared.exceptions import AgentError
from shared.notify.exceptions import EmailError, InvalidAddress, SendFailed
from shared.notify.recipients import validate_address

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutgoingEmail:
    """One message to send. `id` is the notification id: the same id is the same message (idempotency)."""

    id: str
    sender: str
    to: tuple[str, ...]
    subject: str
    text: str
    html: str
    sender_name: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    attempt: int = 1  # > 1: an earlier attempt may have reached the provider (the worker stopped mid-send)

    @property
    def message_id(self) -> str:
        """A Message-ID derived from the notification id, so a resend is recognisably the same message."""
        digest = hashlib.sha256(self.id.encode()).hexdigest()[:32]
        domain = self.sender.rpartition("@")[2] or "databricks-ai-agent.invalid"
        return f"<{digest}@{domain}>"

    def to_mime(self, now: datetime | None = None) -> EmailMessage:
        """multipart/alternative: plain text first, HTML second (clients show the last one they can)."""
        message = EmailMessage()
        message["From"] = formataddr((self.sender_name, self.sender)) if self.sender_name else self.sender
        message["To"] = ", ".join(self.to)
        message["Subject"] = self.subject
        message["Date"] = format_datetime(now or datetime.now(timezone.utc))
        message["Message-ID"] = self.message_id
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to the agent
        message["X-Agent-Notification-Id"] = self.id
        for name, value in self.headers.items():
            message[name] = value
        message.set_content(self.text, subtype="plain", charset="utf-8")
        message.add_alternative(self.html, subtype="html", charset="utf-8")
        return message


@dataclass(frozen=True)
class SendResult:
    """What a transport did with a message."""

    transport: str
    status: Literal["sent", "recorded"] = "sent"
    provider_id: str | None = None  # SMTP queue id, ACS operation id, file path
    detail: str = ""


class EmailTransport:
    """Base of the transports. Subclasses set `name` and implement `_send` and `describe`."""

    name = "base"

    def send(self, email: OutgoingEmail) -> SendResult:
        """Send `email`; raise SendFailed (try again later) or SendRejected (never) — nothing else."""
        if not email.to:
            raise InvalidAddress("no recipients")
        validate_address(email.sender)
        for address in email.to:
            validate_address(address)
        if "\n" in email.subject or "\r" in email.subject:
            raise InvalidAddress("line break in the subject")
        try:
            return self._send(email)
        except EmailError:
            raise
        except AgentError as exc:  # e.g. SecretError: the password or connection string could not be read
            raise SendFailed(f"{self.name}: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - a transport bug or an unexpected backend error must not fail
            # the decision: it becomes a retryable send failure, logged with its traceback.
            log.exception("unexpected error in the %s transport", self.name, extra={"notification": email.id})
            raise SendFailed(f"{self.name}: unexpected {type(exc).__name__}: {exc}") from exc

    def describe(self) -> str:
        """One line for people: where this transport sends (never a secret)."""
        return self.name

    def _send(self, email: OutgoingEmail) -> SendResult:
        raise NotImplementedError
