"""Local fakes of the three escalation endpoints, speaking their documented protocols:

- Microsoft Teams, a Workflows webhook: POST /workflows/<id>/triggers/manual/paths/invoke?api-version=...&sig=<s>
  with a message holding Adaptive Card attachments → 202 Accepted (empty body); a wrong sig → 401; a body that
  is not a message with an application/vnd.microsoft.card.adaptive attachment → 400.
- Slack, an incoming webhook: POST /services/<T>/<B>/<secret> → 200 "ok"; unknown path → 404 "no_service";
  no `text` and no `blocks` → 400 "no_text"; malformed blocks → 400 "invalid_blocks".
- PagerDuty Events API v2: POST /v2/enqueue → 202 {"status": "success", "message": "Event processed",
  "dedup_key"}; an invalid event → 400 {"status": "invalid event", "message": "Event object is invalid",
  "errors": [...]} (routing key of 32 characters, event_action trigger/acknowledge/resolve, payload with
  summary ≤ 1024, source and severity of critical/error/warning/info for a trigger, dedup_key ≤ 255).
Failures can be scripted (`fail_next(status, retry_after)`). Serves loopback only; every accepted request is
kept in `received` by channel.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from localdev.ports import free_port

TEAMS_SIG = "fake-teams-sig-0123456789"
SLACK_PATH = "/services/T0000FAKE/B0000FAKE/fakeslacksecret0123456789"
ROUTING_KEY = "R0123456789ABCDEF0123456789ABCDE"  # 32 characters, as PagerDuty's are
SEVERITIES = ("critical", "error", "warning", "info")


class ChatWebhooks:
    """The fake service (context manager)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.open_incidents: dict[str, dict[str, Any]] = {}  # PagerDuty dedup_key → last trigger
        self._failures: deque[tuple[int, float | None]] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def teams_url(self) -> str:
        return f"{self.base}/workflows/abc123/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={TEAMS_SIG}"

    @property
    def slack_url(self) -> str:
        return self.base + SLACK_PATH

    @property
    def pagerduty_url(self) -> str:
        return self.base + "/v2/enqueue"

    def fail_next(self, status: int, retry_after: float | None = None, times: int = 1) -> None:
        """Answer the next `times` requests with `status` (429 carries Retry-After when given)."""
        with self._lock:
            self._failures.extend([(status, retry_after)] * times)

    def __enter__(self) -> "ChatWebhooks":
        fake = self

        class Handler(_Handler):
            service = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def handle(self, path: str, query: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            status, retry_after = failure
            return status, "rate limited" if status == 429 else "server error", \
                ({"Retry-After": str(int(retry_after))} if retry_after else {})
        if path.startswith("/workflows/"):
            return self._teams(query, body)
        if path.startswith("/services/"):
            return self._slack(path, body)
        if path == "/v2/enqueue":
            return self._pagerduty(body)
        return 404, "not found", {}

    def _teams(self, query: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        if query.get("sig") != TEAMS_SIG:
            return 401, {"error": {"code": "DirectApiAuthorizationRequired", "message": "bad signature"}}, {}
        attachments = body.get("attachments") if isinstance(body, dict) else None
        if body.get("type") != "message" or not attachments or any(
                a.get("contentType") != "application/vnd.microsoft.card.adaptive"
                or a.get("content", {}).get("type") != "AdaptiveCard" for a in attachments):
            return 400, {"error": {"code": "InvalidRequestContent", "message": "not an Adaptive Card message"}}, {}
        self.received["teams"].append(body)
        return 202, "", {}

    def _slack(self, path: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        if path != SLACK_PATH:
            return 404, "no_service", {}
        if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
            return 400, "no_text", {}
        if "blocks" in body and (not isinstance(body["blocks"], list)
                                 or any(not isinstance(b, dict) or "type" not in b for b in body["blocks"])):
            return 400, "invalid_blocks", {}
        self.received["slack"].append(body)
        return 200, "ok", {}

    def _pagerduty(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        errors = []
        if not isinstance(body, dict):
            body, errors = {}, ["Event object must be JSON"]
        if len(str(body.get("routing_key", ""))) != 32:
            errors.append("'routing_key' must be 32 characters")
        action = body.get("event_action")
        if action not in ("trigger", "acknowledge", "resolve"):
            errors.append("'event_action' is invalid")
        dedup = body.get("dedup_key")
        if dedup is not None and len(str(dedup)) > 255:
            errors.append("'dedup_key' is longer than 255 characters")
        if action in ("acknowledge", "resolve") and not dedup:
            errors.append("'dedup_key' is required for acknowledge and resolve")
        if action == "trigger":
            payload = body.get("payload") or {}
            if not payload.get("summary") or len(payload["summary"]) > 1024:
                errors.append("'payload.summary' is missing or longer than 1024 characters")
            if not payload.get("source"):
                errors.append("'payload.source' is missing")
            if payload.get("severity") not in SEVERITIES:
                errors.append("'payload.severity' must be critical, error, warning or info")
        if errors:
            return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}, {}
        key = dedup or uuid.uuid4().hex
        self.received["pagerduty"].append(body)
        if action == "trigger":
            self.open_incidents[key] = body
        elif action == "resolve":
            self.open_incidents.pop(key, None)
        return 202, {"status": "success", "message": "Event processed", "dedup_key": key}, {}


class _Handler(BaseHTTPRequestHandler):
    service: ChatWebhooks
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def do_POST(self) -> None:  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = urlsplit(self.path)
        try:
            body = json.loads(raw or b"null")
        except json.JSONDecodeError:
            body = None
        status, answer, headers = self.service.handle(parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()},
                                                      body)
        data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if isinstance(answer, str) else "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
