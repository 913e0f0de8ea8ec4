"""Azure Communication Services Email: the real EmailClient, with a connection string or an endpoint + identity.

azure.communication.email is imported on the first send, never when this module is imported (cold start).
The send is a long-running operation: POST → 202 + Operation-Location → status polls. The operation id is
derived from the notification id (sent as Operation-Id), so a resend after a crash names the same operation.

Idempotent send: a resend (attempt > 1: an earlier attempt may have reached ACS before the worker stopped)
first reads the operation back (GET /emails/operations/{id}); if ACS knows it, nothing is sent again. Each
POST also carries ACS's repeatable-request headers (Repeatability-Request-Id, Repeatability-First-Sent;
https://learn.microsoft.com/rest/api/communication/repeatable-requests), so the SDK's own retries of one
POST are executed at most once by the service (it tracks them for 5 minutes).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

from shared.notify.exceptions import SendFailed, SendRejected
from shared.notify.transports.base import EmailTransport, OutgoingEmail, SendResult

log = logging.getLogger(__name__)

_OPERATION_NAMESPACE = uuid.UUID("6c1f0a52-3e0b-4d61-9a7b-0d4f4b2b1c9e")

# HTTP status of a refused request -> our error. Anything not listed (5xx, 408, 429, 401, 403) is retried:
# throttling and outages pass, and a wrong key or a missing role is fixed by an operator, not by the message.
_REJECTED_STATUS = {400, 404, 413, 415, 422}


class AcsTransport(EmailTransport):
    """Send through ACS Email. Give a connection string (or a function returning it) or an endpoint."""

    name = "acs"

    def __init__(
        self,
        *,
        connection_string: Callable[[], str | None] | None = None,
        endpoint: str | None = None,
        credential: Any = None,
        managed_identity_client_id: str | None = None,
        send_timeout: float = 30.0,
        poll_interval: float = 2.0,
        client_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if connection_string is None and not endpoint:
            raise ValueError("ACS needs a connection string or an endpoint")
        self._connection_string = connection_string
        self.endpoint = endpoint
        self._credential = credential
        self._client_id = managed_identity_client_id
        self.send_timeout = send_timeout
        self.poll_interval = poll_interval
        self._client_kwargs = dict(client_kwargs or {})
        self._client: Any = None
        self._lock = threading.Lock()

    def describe(self) -> str:
        if self._connection_string is not None:
            return "acs (connection string)"
        if self._credential is not None:
            return f"acs {self.endpoint} (token credential)"
        identity = f"managed identity {self._client_id}" if self._client_id else "managed identity"
        return f"acs {self.endpoint} ({identity})"

    def _send(self, email: OutgoingEmail) -> SendResult:
        from azure.core.exceptions import AzureError, HttpResponseError

        client = self._get_client()
        body = {
            "senderAddress": email.sender,
            "recipients": {"to": [{"address": a} for a in email.to]},
            "content": {"subject": email.subject, "plainText": email.text, "html": email.html},
            "headers": {"X-Agent-Notification-Id": email.id, "Auto-Submitted": "auto-generated", **email.headers},
            "userEngagementTrackingDisabled": True,
        }
        operation_id = str(uuid.uuid5(_OPERATION_NAMESPACE, email.id))
        if email.attempt > 1:
            known = self._operation_status(client, operation_id)
            if known is not None and known.lower() != "failed":
                log.info("ACS has this email already; not sending it again", extra={"notification": email.id})
                return SendResult(self.name, provider_id=operation_id,
                                  detail=f"accepted by ACS on an earlier attempt ({known}); not sent again")
        repeatable = {
            "Repeatability-Request-Id": str(uuid.uuid5(_OPERATION_NAMESPACE, f"{email.id}#{email.attempt}")),
            "Repeatability-First-Sent": formatdate(usegmt=True),
        }
        try:
            poller = client.begin_send(body, operation_id=operation_id, polling_interval=self.poll_interval,
                                       headers=repeatable)
            result = poller.result(timeout=self.send_timeout)
        except HttpResponseError as exc:
            status = exc.status_code
            error = getattr(exc, "error", None)
            code = getattr(error, "code", None) or exc.reason or "error"
            message = " ".join(str(getattr(error, "message", None) or exc.message or "").split())
            where = f"HTTP {status}" if status not in (None, 200) else "send operation Failed"
            text = f"acs: {where} {code}: {message}"[:500]
            # A Failed operation status arrives with the 200 of the status poll: the message bounced for good.
            if status in _REJECTED_STATUS or status == 200 or status is None:
                raise SendRejected(text) from exc
            raise SendFailed(text) from exc
        except AzureError as exc:
            raise SendFailed(f"acs: {type(exc).__name__}: {exc}") from exc
        status = (result or {}).get("status") if isinstance(result, dict) else None
        if status is None or not poller.done():
            # Accepted (202) but not confirmed within the wait: ACS has it. Resending would risk a duplicate.
            return SendResult(self.name, provider_id=operation_id,
                              detail=f"accepted by ACS; still {poller.status()} after {self.send_timeout:g}s")
        if str(status).lower() != "succeeded":
            raise SendRejected(f"acs: operation {operation_id} ended {status}")
        return SendResult(self.name, provider_id=operation_id, detail="delivered to ACS (Succeeded)")

    def _operation_status(self, client: Any, operation_id: str) -> str | None:
        """The status ACS has for `operation_id` (Running, Succeeded, Failed ...), or None if it has none."""
        from azure.core.exceptions import AzureError
        from azure.core.rest import HttpRequest

        request = HttpRequest("GET", f"/emails/operations/{operation_id}",
                              params={"api-version": client._config.api_version})
        try:
            response = client.send_request(request)
        except AzureError as exc:
            raise SendFailed(f"acs: could not look up operation {operation_id}: {type(exc).__name__}") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise SendFailed(f"acs: looking up operation {operation_id} answered HTTP {response.status_code}")
        return str(response.json().get("status") or "Unknown")

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._build_client()
            return self._client

    def _build_client(self) -> Any:
        from azure.communication.email import EmailClient

        from shared.http_session import with_sdk_transport

        kwargs = with_sdk_transport(self._client_kwargs)  # proxies read once, not on every call
        if self._connection_string is not None:
            value = self._connection_string()
            if not value:
                raise SendFailed("acs: no connection string (ACS_CONNECTION_STRING or its Key Vault secret is empty)")
            return EmailClient.from_connection_string(value, **kwargs)
        credential = self._credential or _managed_identity(self._client_id)
        return EmailClient(self.endpoint, credential, **kwargs)


def _managed_identity(client_id: str | None) -> Any:
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    return ManagedIdentityCredential(client_id=client_id) if client_id else DefaultAzureCredential()
