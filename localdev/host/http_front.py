"""HTTP triggers on a loopback ThreadingHTTPServer: routes under /<routePrefix>/, methods, function keys."""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

from localdev.host.bindings import FunctionSpec
from localdev.host.routes import Route, compile_route

logger = logging.getLogger(__name__)

KEY_HEADER = "x-functions-key"
KEY_PARAMETER = "code"
# A known route asked with a method it does not list. The real host answers 404 here (azure-functions-host
# issue #10098, open); the harness answers 405 with an Allow header, which says more in a failing test. Tests
# meant to pass under `func start` too should not assert on this status.
METHOD_NOT_ALLOWED_STATUS = 405


@dataclass(frozen=True)
class FunctionKeys:
    """Keys the harness accepts. FUNCTION level: the function's own key, the host key or the master key;
    ADMIN level: the master key only; ANONYMOUS: none needed."""

    host_key: str
    master_key: str
    per_function: Mapping[str, str] = field(default_factory=dict)

    def allows(self, spec: FunctionSpec, presented: str | None) -> bool:
        if spec.auth_level == "ANONYMOUS":
            return True
        if not presented:
            return False
        accepted = [self.master_key]
        if spec.auth_level != "ADMIN":
            accepted += [self.host_key, self.per_function.get(spec.name, "")]
        return any(key and hmac.compare_digest(presented.encode(), key.encode()) for key in accepted)


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @classmethod
    def plain(cls, status: int, text: str = "") -> HttpReply:
        return cls(status, [("Content-Type", "text/plain; charset=utf-8")], text.encode())


# (spec, request) -> (succeeded, returned value)
InvokeHttpFunction = Callable[[FunctionSpec, func.HttpRequest], tuple[bool, Any]]


class HttpFront:
    """Maps requests to HTTP-triggered functions and serves them on 127.0.0.1."""

    def __init__(self, specs: Iterable[FunctionSpec], prefix: str, keys: FunctionKeys,
                 invoke: InvokeHttpFunction) -> None:
        routes = [(compile_route(s.route or s.name, prefix), s) for s in specs]
        # Literal routes before parameterised ones, catch-alls last ("jobs/latest" wins over "jobs/{id}").
        routes.sort(key=lambda item: ("{*" in item[0].template, len(item[0].names)))
        self._routes: list[tuple[Route, FunctionSpec]] = routes
        self._keys = keys
        self._invoke = invoke
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the HTTP server is not running: call start() first")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self, port: int = 0) -> None:
        # Port 0 lets the kernel pick a free port atomically, so nothing can take it between choice and bind.
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.front = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="http-front", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join()
            self._server = None

    def dispatch(self, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes) -> HttpReply:
        """Answer one request; `target` is the path and query as sent."""
        started = time.monotonic()
        parts = urlsplit(target)
        reply = self._answer(method.upper(), target, parts.path, parts.query, headers, body)
        # The query string is left out of the log: it may hold the function key.
        logger.info("%s %s -> %d (%.0f ms)", method, parts.path, reply.status, (time.monotonic() - started) * 1000)
        return reply

    def _answer(self, method: str, target: str, path: str, query: str, raw_headers: Iterable[tuple[str, str]],
                body: bytes) -> HttpReply:
        matches = [(spec, params) for route, spec in self._routes if (params := route.match(path)) is not None]
        if not matches:
            return HttpReply.plain(404)
        allowed = [(spec, params) for spec, params in matches if spec.methods is None or method in spec.methods]
        if not allowed:
            methods = sorted({m for spec, _ in matches for m in spec.methods or ()})
            return HttpReply(METHOD_NOT_ALLOWED_STATUS, [("Allow", ", ".join(methods))], b"")
        spec, route_params = allowed[0]
        headers: dict[str, str] = {}
        for name, value in raw_headers:
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        params = dict(parse_qsl(query, keep_blank_values=True))
        if not self._keys.allows(spec, params.get(KEY_PARAMETER) or headers.get(KEY_HEADER)):
            return HttpReply.plain(401)
        request = func.HttpRequest(method, self.base_url + target, headers=headers, params=params,
                                   route_params=route_params, body=body)
        succeeded, result = self._invoke(spec, request)
        if not succeeded:
            return HttpReply.plain(500, "Internal Server Error")
        return _reply_from(spec, result)


def _reply_from(spec: FunctionSpec, result: Any) -> HttpReply:
    if isinstance(result, func.HttpResponse):
        headers = [(k, v) for k, v in result.headers.items() if k.lower() != "content-length"]
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", f"{result.mimetype}; charset={result.charset}"))
        return HttpReply(result.status_code, headers, result.get_body() or b"")
    if isinstance(result, (str, bytes)):
        return HttpReply(200, [("Content-Type", "text/plain; charset=utf-8")],
                         result.encode() if isinstance(result, str) else result)
    if result is None:
        return HttpReply(204, [], b"")
    logger.error("function %s returned %s; an HTTP function returns func.HttpResponse", spec.name,
                 type(result).__name__)
    return HttpReply.plain(500, "Internal Server Error")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    front: HttpFront


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "LocalFunctionsHost"

    def _serve(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            reply = HttpReply.plain(411, "send a Content-Length")
        else:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            reply = self.server.front.dispatch(self.command, self.path, self.headers.items(), body)
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        """Silenced: HttpFront.dispatch logs each request without its query string (which may hold a key)."""
