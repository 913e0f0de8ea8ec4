"""The webhook's whole logic, apart from Azure's HttpRequest: authenticate, bound, parse, normalise.

Answers in milliseconds: no Jobs API call here. The body is only a trigger; the queue function reads
the run back from Databricks.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from shared.events import FailureEvent, parse_webhook
from shared.exceptions import BadRequest

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class WebhookAnswer:
    """The HTTP answer, and the event to enqueue (failure events only)."""

    status: int
    message: str
    event: FailureEvent | None = None
    headers: Mapping[str, str] | None = None


def handle_webhook(
    body: bytes,
    headers: Mapping[str, str],
    *,
    username: str | None,
    password: str | None,
    check_workspace: Callable[[str | None], None] | None = None,
) -> WebhookAnswer:
    """Validate one webhook delivery. 202 with an event to enqueue, 202 for other events, 4xx naming the problem."""
    headers = {k.lower(): v for k, v in headers.items()}
    if username and password and not _basic_auth_ok(headers.get("authorization", ""), username, password):
        return WebhookAnswer(401, "authentication required", headers={"WWW-Authenticate": 'Basic realm="webhook"'})
    if len(body) > MAX_BODY_BYTES:
        return WebhookAnswer(413, f"body larger than {MAX_BODY_BYTES} bytes")
    content_type = headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type not in ("application/json", "text/json", ""):
        return WebhookAnswer(415, f"content type must be application/json, not {content_type}")
    try:
        payload = parse_webhook(body)
        if check_workspace is not None:
            check_workspace(payload.workspace_id)
    except BadRequest as exc:
        log.warning("webhook rejected: %s", exc, extra={"field": exc.field})
        return WebhookAnswer(400, str(exc))
    if not payload.is_failure:
        return WebhookAnswer(202, f"event {payload.event_type} accepted and ignored")
    event = payload.to_event()
    log.info("failure event queued", extra={"job_id": event.job_id, "run_id": event.run_id, "task_key": event.task_key})
    return WebhookAnswer(202, "queued", event=event)


def _basic_auth_ok(header: str, username: str, password: str) -> bool:
    """Compare Basic credentials in constant time (both parts, always)."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, given = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    # Digests first, so neither the time taken nor an early exit tells the caller the expected lengths.
    user_ok = hmac.compare_digest(_digest(user), _digest(username))
    password_ok = hmac.compare_digest(_digest(given), _digest(password))
    return user_ok and password_ok


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()
