"""A local fake of the Azure OpenAI chat-completions protocol, for tests with the real `openai` client.

Faithful to ../shared/reference/azure.md §6:
  POST /openai/deployments/<deployment>/chat/completions?api-version=...
       auth: header `api-key: <key>`, or `Authorization: Bearer <token>` (Entra ID) when a token is set
       → 200 {"id", "object": "chat.completion", "model", "choices": [{index, finish_reason, message}], "usage"}
Errors use Azure's body shape {"error": {"code", "message"}}: 401 bad key, 404 unknown deployment or no
api-version, 429 with Retry-After / retry-after-ms, 500.

Scripted replies (`enqueue`) are answered in order, then `default_answer` for every other request:
`Reply.answer(obj)` structured JSON, `Reply.throttled(1)`, `Reply.server_error()`, `Reply.slow(s, obj)`,
`Reply.malformed()`, `Reply.refused(text)`, `Reply.truncated()`.

Usage is computed, not constant, so prompt-size figures mean something: prompt_tokens = characters of every
message's content plus the response_format JSON, divided by 4 (about what a BPE tokenizer gives for
English), plus 3 per message; completion_tokens = characters of the reply / 4. Serves loopback only.
"""

from __future__ import annotations

import json
import math
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from localdev.fakes.openai_finetune import FineTuning
from localdev.ports import free_port

FAKE_API_KEY = "fake-azure-openai-key-0123456789"
CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 3

# A plausible structured answer: what the fake says when nothing is scripted.
DEFAULT_ANSWER: dict[str, Any] = {
    "category": "unknown",
    "confidence": 0.4,
    "root_cause": "The failure text does not show a clear root cause.",
    "suggested_fix": "Open the run page and read the full error of the failed task.",
    "severity": "medium",
    "suggested_parameters": None,
}


@dataclass(frozen=True)
class Reply:
    """One scripted answer. `content` is the assistant message's text (JSON for structured output)."""

    status: int = 200
    content: str | None = None
    finish_reason: str = "stop"
    refusal: str | None = None
    delay_seconds: float = 0.0
    retry_after: float | None = None
    error_code: str | None = None
    error_message: str | None = None

    @classmethod
    def answer(cls, obj: dict[str, Any] | str, *, delay_seconds: float = 0.0) -> "Reply":
        """A normal reply whose content is `obj` as JSON (or the string itself)."""
        content = obj if isinstance(obj, str) else json.dumps(obj)
        return cls(content=content, delay_seconds=delay_seconds)

    @classmethod
    def slow(cls, seconds: float, obj: dict[str, Any] | None = None) -> "Reply":
        """A normal reply that only comes after `seconds`."""
        return cls.answer(obj or DEFAULT_ANSWER, delay_seconds=seconds)

    @classmethod
    def throttled(cls, retry_after: float = 1) -> "Reply":
        """429 as Azure sends it when the deployment's token or request rate is exceeded."""
        return cls(
            status=429, retry_after=retry_after, error_code="429",
            error_message="Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
            "2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. "
            f"Please retry after {math.ceil(retry_after)} second{'s' if math.ceil(retry_after) != 1 else ''}.",
        )

    @classmethod
    def server_error(cls, status: int = 500) -> "Reply":
        return cls(status=status, error_code="InternalServerError",
                   error_message="The server had an error while processing your request. Sorry about that!")

    @classmethod
    def malformed(cls, text: str = '{"category": "code", "root_cause": "The job fail') -> "Reply":
        """Content that is not the promised JSON (cut-off, or prose)."""
        return cls(content=text)

    @classmethod
    def refused(cls, text: str = "I'm sorry, but I cannot assist with that request.") -> "Reply":
        """A structured-output refusal: content null, message.refusal set."""
        return cls(refusal=text)

    @classmethod
    def truncated(cls) -> "Reply":
        """The model hit max_tokens: finish_reason "length" and half a JSON document."""
        return cls(content='{"category": "resource", "root_cause": "The ',
                   finish_reason="length")


@dataclass
class SeenRequest:
    """A request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]
    status: int = 0
    prompt_tokens: int = 0

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    @property
    def prompt_text(self) -> str:
        return "\n".join(str(m.get("content") or "") for m in self.messages)


def count_prompt_tokens(body: dict[str, Any]) -> int:
    """The fake's token count of a request: content and schema characters / 4, plus 3 per message."""
    messages = body.get("messages", [])
    chars = sum(len(str(m.get("content") or "")) for m in messages)
    if body.get("response_format"):
        chars += len(json.dumps(body["response_format"], separators=(",", ":")))
    return math.ceil(chars / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE * len(messages)


@dataclass
class FakeAzureOpenAI:
    """The fake service. Use as a context manager, or start()/stop()."""

    api_key: str | None = FAKE_API_KEY
    bearer_token: str | None = None
    deployments: tuple[str, ...] = ("gpt-4o-mini",)
    model: str = "gpt-4o-mini-2024-07-18"
    port: int = field(default_factory=free_port)
    default_answer: dict[str, Any] | Callable[[SeenRequest], dict[str, Any]] = field(
        default_factory=lambda: dict(DEFAULT_ANSWER)
    )
    requests: list[SeenRequest] = field(default_factory=list)
    _script: deque[Reply] = field(default_factory=deque)
    fine_tuning: FineTuning = field(default_factory=FineTuning)
    _server: ThreadingHTTPServer | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def chat_requests(self) -> list[SeenRequest]:
        """Requests that reached a deployment's chat/completions path."""
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    # --- scripting ----------------------------------------------------------------------------------
    def enqueue(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order."""
        with self._lock:
            self._script.extend(replies)

    # --- life cycle ---------------------------------------------------------------------------------
    def start(self) -> "FakeAzureOpenAI":
        fake = self

        class Handler(_Handler):
            service = fake

        self._stopping.clear()
        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         name="fake-azure-openai", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # slow replies stop waiting
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeAzureOpenAI":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- protocol -----------------------------------------------------------------------------------
    def authorized(self, headers: dict[str, str]) -> bool:
        if self.api_key is not None and headers.get("api-key") == self.api_key:
            return True
        bearer = headers.get("authorization", "")
        return self.bearer_token is not None and bearer == f"Bearer {self.bearer_token}"

    def handle(self, seen: SeenRequest) -> tuple[int, dict[str, Any], dict[str, str], float]:
        """(status, body, headers, delay) for one request."""
        parts = seen.path.strip("/").split("/")
        if not seen.query.get("api-version"):
            return 404, _error("404", "Resource not found"), {}, 0.0
        if not self.authorized(seen.headers):
            return 401, _error("401", "Access denied due to invalid subscription key or wrong API endpoint. Make "
                                      "sure to provide a valid key for an active subscription and use a correct "
                                      "regional API endpoint for your resource."), {}, 0.0
        if len(parts) != 5 or parts[:2] != ["openai", "deployments"] or parts[3:] != ["chat", "completions"]:
            return 404, _error("404", "Resource not found"), {}, 0.0
        if parts[2] not in self.deployments:
            return 404, _error("DeploymentNotFound", "The API deployment for this resource does not exist. If you "
                                                     "created the deployment within the last 5 minutes, please wait "
                                                     "a moment and try again."), {}, 0.0
        if not isinstance(seen.body.get("messages"), list) or not seen.body["messages"]:
            return 400, _error("BadRequest", "'messages' is a required property"), {}, 0.0
        with self._lock:
            reply = self._script.popleft() if self._script else None
        if reply is None:
            answer = self.default_answer(seen) if callable(self.default_answer) else self.default_answer
            reply = Reply.answer(answer)
        if reply.status != 200:
            headers = {}
            if reply.retry_after is not None:
                headers = {"Retry-After": str(math.ceil(reply.retry_after)),
                           "retry-after-ms": str(int(reply.retry_after * 1000))}
            return reply.status, _error(reply.error_code or str(reply.status), reply.error_message or ""), headers, \
                reply.delay_seconds
        return 200, self._completion(seen, reply), {}, reply.delay_seconds

    def _completion(self, seen: SeenRequest, reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": reply.refusal}
        out_chars = len(reply.content or reply.refusal or "")
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": 1_733_000_000,
            "model": self.model,
            "choices": [{"index": 0, "finish_reason": reply.finish_reason, "message": message}],
            "usage": {
                "prompt_tokens": seen.prompt_tokens,
                "completion_tokens": math.ceil(out_chars / CHARS_PER_TOKEN),
                "total_tokens": seen.prompt_tokens + math.ceil(out_chars / CHARS_PER_TOKEN),
            },
        }


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class _Handler(BaseHTTPRequestHandler):
    service: FakeAzureOpenAI
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: tests read `requests`
        return

    def do_GET(self) -> None:  # noqa: N802
        self._files_or_jobs("GET", b"")

    def _files_or_jobs(self, method: str, raw: bytes) -> bool:
        """The files and fine-tuning routes (localdev.fakes.openai_finetune); False for any other path."""
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        if not self.service.fine_tuning.handles(parts.path):
            if method == "GET":
                self._answer(404, _error("404", "Resource not found"), {})
            return False
        if "api-version" not in parse_qs(parts.query):
            self._answer(404, _error("404", "Resource not found"), {})
        elif not self.service.authorized(headers):
            self._answer(401, _error("401", "Access denied due to invalid subscription key."), {})
        else:
            status, body = self.service.fine_tuning.handle(method, parts.path, headers, raw)
            self._answer(status, body, {})
        return True

    def do_POST(self) -> None:  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self._files_or_jobs("POST", raw):
            return
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = {}
        seen = SeenRequest("POST", parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}, headers,
                           body if isinstance(body, dict) else {})
        seen.prompt_tokens = count_prompt_tokens(seen.body)
        self.service.requests.append(seen)
        status, answer, extra, delay = self.service.handle(seen)
        seen.status = status
        if delay and self.service._stopping.wait(delay):
            return
        self._answer(status, answer, extra)

    def _answer(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("apim-request-id", str(uuid.uuid4()))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout): nothing to answer
            pass
