"""SMTP with smtplib: STARTTLS (port 587), implicit TLS (465) or plain (local relays only), login, timeouts."""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Callable
from typing import Literal

from shared.notify.exceptions import SendFailed, SendRejected
from shared.notify.transports.base import EmailTransport, OutgoingEmail, SendResult

Security = Literal["starttls", "ssl", "none"]

# smtplib exception -> (our error, what to tell an operator). Checked in order: subclasses first.
_ERRORS: list[tuple[type[BaseException], type[Exception], str]] = [
    (smtplib.SMTPAuthenticationError, SendFailed, "login refused: check EMAIL_SMTP_USERNAME and EMAIL_PASSWORD"),
    (smtplib.SMTPNotSupportedError, SendFailed, "the server does not offer what EMAIL_SMTP_SECURITY asks for"),
    (smtplib.SMTPRecipientsRefused, SendRejected, "every recipient was refused"),
    (smtplib.SMTPSenderRefused, SendFailed, "the sender was refused: check EMAIL_SENDER (and STARTTLS/login)"),
    (smtplib.SMTPDataError, SendFailed, "the server refused the message"),
    (smtplib.SMTPConnectError, SendFailed, "could not connect"),
    (smtplib.SMTPServerDisconnected, SendFailed, "the server closed the connection"),
    (smtplib.SMTPResponseException, SendFailed, "the server answered with an error"),
    (smtplib.SMTPException, SendFailed, "SMTP error"),
    (ssl.SSLError, SendFailed, "TLS failed: check EMAIL_SMTP_SECURITY and EMAIL_SMTP_PORT"),
    (socket.timeout, SendFailed, "timed out"),
    (OSError, SendFailed, "network error"),
]


class SmtpTransport(EmailTransport):
    """Send through an SMTP server. The password is read when needed (it may come from Key Vault)."""

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: Security = "starttls",
        username: str | None = None,
        password: Callable[[], str | None] | None = None,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self._password = password or (lambda: None)
        self.timeout = timeout
        self._ssl_context = ssl_context

    def describe(self) -> str:
        login = f", login as {self.username}" if self.username else ", no login"
        return f"smtp {self.host}:{self.port} ({self.security}{login}, timeout {self.timeout:g}s)"

    def _send(self, email: OutgoingEmail) -> SendResult:
        where = f"{self.host}:{self.port}"
        try:
            with self._connect() as client:
                if self.security == "starttls":
                    client.starttls(context=self._context())
                    client.ehlo()
                password = self._password()
                if password:
                    client.login(self.username or email.sender, password)
                refused = client.send_message(email.to_mime(), from_addr=email.sender, to_addrs=list(email.to))
        except Exception as exc:
            for error_type, ours, hint in _ERRORS:
                if isinstance(exc, error_type):
                    raise ours(f"smtp {where}: {hint} ({_describe(exc)})") from exc
            raise
        detail = f"accepted by {where}"
        if refused:
            detail += "; refused: " + ", ".join(f"{addr} ({code})" for addr, (code, _) in refused.items())
        return SendResult(self.name, provider_id=email.message_id, detail=detail)

    def _connect(self) -> smtplib.SMTP:
        if self.security == "ssl":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self._context())
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)

    def _context(self) -> ssl.SSLContext:
        return self._ssl_context or ssl.create_default_context()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        error = exc.smtp_error
        message = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
        return f"{exc.smtp_code} {message}".strip()
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{addr}: {code}" for addr, (code, _) in exc.recipients.items())
    return f"{type(exc).__name__}: {exc}"
