"""Send a channel message over HTTP: transient failures (unreachable, timeout, 429, 5xx) raise SendFailed so
the outbox tries again later; a refusal (other 4xx) raises SendRejected and is not retried.

The webhook URLs (Teams, Slack) and the PagerDuty routing key are secrets (whoever holds one can post): they
come from Key Vault through a provider called on each send, so a rotated secret is picked up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from shared.http_session import ProxySession
from shared.notify.channels import payloads
from shared.notify.channels.message import ChannelMessage
from shared.notify.exceptions import SendFailed, SendRejected

log = logging.getLogger(__name__)

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
TIMEOUT_SECONDS = 10.0


@dataclass
class ChannelSender:
    """One channel: its name, where it posts, and (PagerDuty) its routing key."""

    name: str  # teams, slack, pagerduty
    url: Callable[[], str]
    routing_key: Callable[[], str] | None = None
    session: Any = None
    timeout: float = TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        if self.session is None:
            self.session = ProxySession()  # proxies from the environment read once, not on every call

    def payload(self, message: ChannelMessage) -> dict[str, Any]:
        """The body this channel posts for `message`."""
        if self.name == "teams":
            return payloads.teams(message)
        if self.name == "slack":
            return payloads.slack(message)
        if self.name == "pagerduty":
            if self.routing_key is None:
                raise SendRejected("pagerduty: no routing key configured")
            return payloads.pagerduty(message, self._secret(self.routing_key))
        raise SendRejected(f"unknown channel {self.name!r}")

    def send(self, body: dict[str, Any]) -> str:
        """Post one prepared body; a short provider answer (PagerDuty's dedup key, else the status)."""
        try:
            response = self.session.post(self._secret(self.url), json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise SendFailed(f"{self.name}: {type(exc).__name__}") from exc
        status, text = response.status_code, response.text[:300]
        if status == 429 or status >= 500:
            raise SendFailed(f"{self.name}: HTTP {status}" + (f" (retry after {response.headers['Retry-After']} s)"
                                                              if response.headers.get("Retry-After") else ""))
        if status >= 400:
            raise SendRejected(f"{self.name}: HTTP {status}: {text}")
        if self.name == "slack" and text.strip() != "ok":
            raise SendRejected(f"slack: unexpected answer {text!r}")
        if self.name == "pagerduty":
            try:
                answer = response.json()
            except ValueError as exc:
                raise SendFailed("pagerduty: the answer was not JSON") from exc
            if answer.get("status") != "success":
                raise SendRejected(f"pagerduty: {answer.get('message')}: {answer.get('errors')}")
            return str(answer.get("dedup_key") or "")
        return f"HTTP {status}"

    def _secret(self, read: Callable[[], str]) -> str:
        try:
            return read()
        except Exception as exc:  # noqa: BLE001 - Key Vault down or secret missing: try again later, never crash
            raise SendFailed(f"{self.name}: its secret could not be read ({type(exc).__name__})") from exc
