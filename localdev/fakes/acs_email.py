"""A local fake of the ACS Email REST protocol, for tests and local runs with the real EmailClient.

Faithful to ../shared/reference/azure.md §4:
  POST /emails:send?api-version=...   HMAC-SHA256 signature checked (or a bearer token, when allowed)
                                      → 202 {"id", "status": "Running"} + Operation-Location + Retry-After: 0
  GET  /emails/operations/<id>?...    → 200 {"id", "status": "Succeeded"}  (or "Failed" with an error: bounce)
It can be told to refuse the next requests (429, 500, 400 …), to bounce mail to given addresses, or to keep
an operation "Running" for a number of status polls.
HTTPS when given a certificate (EmailClient.from_connection_string always uses https), else plain HTTP
(then use EmailClient(endpoint, AzureKeyCredential(key))). Serves loopback only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from localdev.ports import free_port

API_VERSION = "2025-09-01"
MAX_CLOCK_SKEW = timedelta(minutes=15)


@dataclass
class SentEmail:
    """A message the fake accepted."""

    operation_id: str
    body: dict[str, Any]
    headers: dict[str, str]
    auth: str  # "hmac" or "bearer"

    @property
    def to(self) -> list[str]:
        return [r["address"] for r in self.body.get("recipients", {}).get("to", [])]

    @property
    def subject(self) -> str:
        return self.body.get("content", {}).get("subject", "")

    @property
    def html(self) -> str:
        return self.body.get("content", {}).get("html", "")

    @property
    def text(self) -> str:
        return self.body.get("content", {}).get("plainText", "")


@dataclass
class _Failure:
    status: int
    code: str
    message: str
    retry_after: int | None = None


@dataclass
class FakeAcsEmail:
    """The fake service. Use as a context manager, or start()/stop()."""

    access_key: str = field(default_factory=lambda: base64.b64encode(secrets.token_bytes(32)).decode())
    certfile: str | None = None
    keyfile: str | None = None
    accept_bearer: bool = False
    port: int = field(default_factory=free_port)
    sent: list[SentEmail] = field(default_factory=list)
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status)
    bounce: set[str] = field(default_factory=set)  # addresses whose mail "bounces" (operation Failed)
    running_polls: int = 0  # status GETs answered "Running" (Retry-After: 1) before the final status
    _failures: list[_Failure] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- addresses ----------------------------------------------------------------------------------
    @property
    def scheme(self) -> str:
        return "https" if self.certfile else "http"

    @property
    def endpoint(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def connection_string(self) -> str:
        return f"endpoint={self.endpoint}/;accesskey={self.access_key}"

    # --- scripting ----------------------------------------------------------------------------------
    def fail_next(self, status: int = 500, code: str = "InternalServerError", message: str = "scripted failure",
                  *, times: int = 1, retry_after: int | None = 0) -> None:
        """Answer the next `times` send requests with this error instead of accepting them."""
        with self._lock:
            self._failures.extend(_Failure(status, code, message, retry_after) for _ in range(times))

    # --- life cycle ---------------------------------------------------------------------------------
    def start(self) -> "FakeAcsEmail":
        fake = self

        class Handler(_Handler):
            service = fake

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        if self.certfile:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.certfile, self.keyfile)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-acs-email", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeAcsEmail":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- protocol -----------------------------------------------------------------------------------
    def check_auth(self, method: str, path_and_query: str, headers: dict[str, str], body: bytes) -> str | None:
        """'hmac' / 'bearer' when the request is authentic, else None."""
        authorization = headers.get("authorization", "")
        if authorization.startswith("Bearer "):
            return "bearer" if self.accept_bearer and len(authorization) > len("Bearer ") else None
        if not authorization.startswith("HMAC-SHA256 "):
            return None
        params = dict(p.split("=", 1) for p in authorization[len("HMAC-SHA256 "):].split("&") if "=" in p)
        if params.get("SignedHeaders") != "x-ms-date;host;x-ms-content-sha256":
            return None
        date, content_hash = headers.get("x-ms-date", ""), headers.get("x-ms-content-sha256", "")
        if base64.b64encode(hashlib.sha256(body).digest()).decode() != content_hash:
            return None
        try:
            sent_at = parsedate_to_datetime(date)
        except (TypeError, ValueError):
            return None
        if abs(datetime.now(timezone.utc) - sent_at) > MAX_CLOCK_SKEW:
            return None
        host = headers.get("host", f"127.0.0.1:{self.port}")
        to_sign = f"{method}\n{path_and_query}\n{date};{host};{content_hash}"
        expected = base64.b64encode(
            hmac.new(base64.b64decode(self.access_key), to_sign.encode(), hashlib.sha256).digest()
        ).decode()
        return "hmac" if hmac.compare_digest(expected, params.get("Signature", "")) else None

    def accept(
        self, body: dict[str, Any], headers: dict[str, str], auth: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            extra = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            return failure.status, {"error": {"code": failure.code, "message": failure.message}}, extra
        problem = _validate(body)
        if problem:
            return 400, {"error": {"code": "BadRequest", "message": problem}}, {}
        operation_id = headers.get("operation-id") or str(uuid.uuid4())
        with self._lock:
            known = self.operations.get(operation_id)
            if known is None:  # a repeated Operation-Id is the same operation: no second email
                bounced = [a for a in (r["address"] for r in body["recipients"]["to"]) if a.lower() in self.bounce]
                known = {"id": operation_id, "status": "Failed" if bounced else "Succeeded"}
                if bounced:
                    known["error"] = {"code": "InvalidRecipient", "message": f"bounced: {', '.join(bounced)}"}
                self.operations[operation_id] = known
                self.sent.append(SentEmail(operation_id, body, dict(headers), auth))
        location = f"{self.endpoint}/emails/operations/{operation_id}?api-version={API_VERSION}"
        return 202, {"id": operation_id, "status": "Running"}, {"Operation-Location": location, "Retry-After": "0"}

    def status(self, operation_id: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            known = self.operations.get(operation_id)
        if known is None:
            return 404, {"error": {"code": "NotFound", "message": f"no operation {operation_id}"}}, {}
        with self._lock:
            if self.running_polls > 0:
                self.running_polls -= 1
                return 200, {"id": operation_id, "status": "Running"}, {"Retry-After": "1"}
        return 200, dict(known), {}


def _validate(body: dict[str, Any]) -> str | None:
    if not isinstance(body.get("senderAddress"), str) or "@" not in body["senderAddress"]:
        return "senderAddress is required"
    to = body.get("recipients", {}).get("to")
    if not isinstance(to, list) or not to or not all(isinstance(r, dict) and "@" in r.get("address", "") for r in to):
        return "recipients.to needs at least one address"
    content = body.get("content") or {}
    if not content.get("subject"):
        return "content.subject is required"
    if not (content.get("plainText") or content.get("html")):
        return "content needs plainText or html"
    return None


class _Handler(BaseHTTPRequestHandler):
    service: FakeAcsEmail
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: tests read `requests`
        return

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = urlsplit(self.path)
        if parts.path != "/emails:send":
            return self._answer(404, {"error": {"code": "NotFound", "message": parts.path}})
        auth = self.service.check_auth("POST", self.path, _headers(self), body)
        if auth is None:
            return self._answer(401, {"error": {"code": "Denied", "message": "Denied by the fake: bad signature"}})
        try:
            payload = json.loads(body or b"{}")
        except json.JSONDecodeError:
            return self._answer(400, {"error": {"code": "BadRequest", "message": "body is not JSON"}})
        status, answer, extra = self.service.accept(payload, _headers(self), auth)
        self._answer(status, answer, extra)

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        prefix = "/emails/operations/"
        if not parts.path.startswith(prefix):
            return self._answer(404, {"error": {"code": "NotFound", "message": parts.path}})
        if self.service.check_auth("GET", self.path, _headers(self), b"") is None:
            return self._answer(401, {"error": {"code": "Denied", "message": "Denied by the fake: bad signature"}})
        status, answer, extra = self.service.status(parts.path[len(prefix):])
        self._answer(status, answer, extra)

    def _answer(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.service.requests.append((self.command, urlsplit(self.path).path, status))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _headers(handler: BaseHTTPRequestHandler) -> dict[str, str]:
    return {k.lower(): v for k, v in handler.headers.items()}
