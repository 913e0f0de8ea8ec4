"""The webhook's whole logic, apart from Azure's HttpRequest: authenticate, bound, parse, normalise.

Answers in milliseconds: no Jobs API call here. The body is only a trigger; the queue function reads
the run back from Databricks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.events import FailureEvent, parse_webhook
from shared.exceptions import BadRequest
from shared.json_bounds import check_json_bounds
from shared.webhook_auth import Credential, authenticate

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
NO_CREDENTIALS = ("the webhook takes no events: AGENT_MODE=act and no Basic-auth credential is set "
                  "(WEBHOOK_USERNAME / WEBHOOK_PASSWORD, or webhook_username in DATABRICKS_WORKSPACES)")


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
    username: str | None = None,
    password: str | None = None,
    credentials: Sequence[Credential] | None = None,
    check_workspace: Callable[[str | None], Any] | None = None,
    require_credentials: bool = False,
) -> WebhookAnswer:
    """Validate one webhook delivery. 202 with an event to enqueue, 202 for other events, 4xx naming the problem.

    `credentials` (or the single `username`/`password`, admitting any workspace) are checked first;
    `check_workspace` maps the body's workspace_id to the configured workspace's key (BadRequest when unknown),
    and a credential admits only the keys it lists. `require_credentials` (act mode): no credential, no event.
    """
    headers = {k.lower(): v for k, v in headers.items()}
    if credentials is None and username and password:
        credentials = [Credential(username, password, frozenset())]
        any_workspace = True
    else:
        any_workspace = False
    if not credentials and require_credentials:
        log.error("webhook refused: %s", NO_CREDENTIALS)
        return WebhookAnswer(503, "the agent is misconfigured; see its logs")
    credential = None
    if credentials:
        credential = authenticate(headers.get("authorization", ""), credentials)
        if credential is None:
            return WebhookAnswer(401, "authentication required", headers={"WWW-Authenticate": 'Basic realm="webhook"'})
    if len(body) > MAX_BODY_BYTES:
        return WebhookAnswer(413, f"body larger than {MAX_BODY_BYTES} bytes")
    content_type = headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type not in ("application/json", "text/json", ""):
        return WebhookAnswer(415, f"content type must be application/json, not {content_type[:100]}")
    try:
        check_json_bounds(body)
        payload = parse_webhook(body)
        key = check_workspace(payload.workspace_id) if check_workspace is not None else None
        if credential is not None and not any_workspace and key not in credential.workspaces:
            # Told apart in the log only: the answer must not let one workspace's sender map the others.
            log.warning("webhook rejected: credential %r does not admit workspace %s", credential.username, key)
            raise BadRequest(f"unknown workspace_id {payload.workspace_id}: not served by this agent",
                             field="workspace_id")
        event = payload.to_event() if payload.is_failure else None
        if event is not None:
            event.check_queue_size()
    except BadRequest as exc:
        log.warning("webhook rejected: %s", exc, extra={"field": exc.field})
        return WebhookAnswer(400, str(exc))
    if event is None:
        return WebhookAnswer(202, f"event {payload.event_type} accepted and ignored")
    log.info("failure event queued", extra={"job_id": event.job_id, "run_id": event.run_id, "task_key": event.task_key})
    return WebhookAnswer(202, "queued", event=event)
