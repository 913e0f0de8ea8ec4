"""Build the notifier from the settings: the transport EMAIL_TRANSPORT names, the outbox table, the secrets.

A missing setting does not stop the agent: the transport is replaced by one that fails every send with the
reason, so decisions go on, emails wait in the outbox, and the log and `email-test` say what to fix.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from typing import Any, Protocol

from pydantic import SecretStr

from shared.notify.exceptions import SendFailed
from shared.notify.notifier import Notifier
from shared.notify.outbox import TableOutbox
from shared.notify.transports.base import EmailTransport, OutgoingEmail, SendResult
from shared.settings import Settings

log = logging.getLogger(__name__)

# From address of the file and table transports when EMAIL_SENDER is unset (nothing leaves the machine).
LOCAL_SENDER = "databricks-ai-agent@example.invalid"


class Secrets(Protocol):
    def get(self, name: str) -> str: ...


class MisconfiguredTransport(EmailTransport):
    """Stands in for a transport whose settings are missing: every send fails (and is retried) with the reason."""

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        self.problem = problem

    def describe(self) -> str:
        return f"{self.name} (not configured: {self.problem})"

    def _send(self, email: OutgoingEmail) -> SendResult:
        raise SendFailed(f"{self.name} transport not configured: {self.problem}")


def build_notifier(settings: Settings, *, table_service_client: Any, secrets: Secrets | None = None) -> Notifier:
    """The notifier the pipeline holds. EMAIL_ENABLED=false: every notification is recorded as 'disabled'."""
    outbox = TableOutbox.from_service(table_service_client, settings.outbox_table)
    transport = build_transport(settings, secrets=secrets)
    if isinstance(transport, MisconfiguredTransport) and settings.email_enabled:
        log.error("email is enabled but %s; emails wait in the outbox", transport.describe())
    from shared.notify.channels.route import parse_routes

    return Notifier(settings, outbox, transport, sender=sender_for(settings, transport),
                    channels=build_channels(settings, secrets), routes=parse_routes(settings.notify_channel_routes))


def build_channels(settings: Settings, secrets: Secrets | None) -> dict[str, Any]:
    """The escalation channels whose secret is configured; each reads its secret on every send (rotation)."""
    from shared.notify.channels.send import ChannelSender

    if secrets is None:
        from shared.secrets import build_secret_provider

        secrets = build_secret_provider(settings)
    names = {"teams": settings.teams_webhook_secret_name, "slack": settings.slack_webhook_secret_name,
             "pagerduty": settings.pagerduty_routing_key_secret_name}
    channels: dict[str, Any] = {}
    for channel, secret in names.items():
        if not secret:
            continue
        read = (lambda name=secret: secrets.get(name))  # noqa: E731 - late-bound per channel
        if channel == "pagerduty":
            channels[channel] = ChannelSender(channel, url=lambda: settings.pagerduty_events_url, routing_key=read)
        else:
            channels[channel] = ChannelSender(channel, url=read)
    return channels


def sender_for(settings: Settings, transport: EmailTransport) -> str:
    if settings.email_sender:
        return settings.email_sender
    return LOCAL_SENDER if transport.name in ("file", "table") else ""


def build_transport(
    settings: Settings,
    *,
    secrets: Secrets | None = None,
    ssl_context: ssl.SSLContext | None = None,
    acs_client_kwargs: dict[str, Any] | None = None,
    acs_credential: Any = None,
) -> EmailTransport:
    """The transport EMAIL_TRANSPORT names (ssl_context / acs_* let tests and local fakes in)."""
    name = settings.email_transport
    if name == "table":
        from shared.notify.transports.table import TableTransport

        return TableTransport()
    if name == "file":
        from shared.notify.transports.file import FileTransport

        if not settings.email_file_dir:
            return MisconfiguredTransport("file", "EMAIL_FILE_DIR is not set")
        return FileTransport(settings.email_file_dir)
    if name == "smtp":
        from shared.notify.transports.smtp import SmtpTransport

        if not settings.email_smtp_host:
            return MisconfiguredTransport("smtp", "EMAIL_SMTP_HOST is not set")
        return SmtpTransport(
            settings.email_smtp_host,
            settings.email_smtp_port,
            security=settings.email_smtp_security,
            username=settings.email_smtp_username or settings.email_sender,
            password=_secret(settings.email_password, settings.email_password_secret_name, secrets, optional=True),
            timeout=settings.email_smtp_timeout_seconds,
            ssl_context=ssl_context,
        )
    if name == "acs":
        from shared.notify.transports.acs import AcsTransport

        common = {
            "send_timeout": settings.acs_send_timeout_seconds,
            "poll_interval": settings.acs_poll_interval_seconds,
            "client_kwargs": acs_client_kwargs,
        }
        # 1. a connection string in the settings (in Azure: a Key Vault reference App Service resolved);
        # 2. the endpoint with the app's managed identity; 3. the connection string read from Key Vault.
        if settings.acs_connection_string is not None:
            return AcsTransport(connection_string=_secret(settings.acs_connection_string, None, None), **common)
        if settings.acs_endpoint:
            return AcsTransport(endpoint=settings.acs_endpoint, credential=acs_credential,
                                managed_identity_client_id=settings.azure_client_id, **common)
        if settings.acs_connection_string_secret_name and secrets is not None:
            return AcsTransport(
                connection_string=_secret(None, settings.acs_connection_string_secret_name, secrets), **common
            )
        return MisconfiguredTransport(
            "acs", "set ACS_CONNECTION_STRING, ACS_ENDPOINT, or ACS_CONNECTION_STRING_SECRET_NAME (with KEY_VAULT_URL)"
        )
    return MisconfiguredTransport(str(name), f"unknown EMAIL_TRANSPORT {name!r}")


def _secret(
    value: SecretStr | None, secret_name: str | None, secrets: Secrets | None, *, optional: bool = False
) -> Callable[[], str | None]:
    """Read a secret when a send needs it (not at start-up): the setting if given, else the named secret.

    optional: a missing secret means "none" (an SMTP relay without login), when the provider can say so.
    Errors reading it (SecretError) surface as a failed send, retried from the outbox.
    """

    def read() -> str | None:
        if value is not None and value.get_secret_value():
            return value.get_secret_value()
        if not secret_name or secrets is None:
            return None
        get_optional = getattr(secrets, "get_optional", None)
        if optional and callable(get_optional):
            return get_optional(secret_name)
        return secrets.get(secret_name)

    return read
