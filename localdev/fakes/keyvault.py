"""A local HTTPS fake of Azure Key Vault's secrets API, for the real `SecretClient` (reference/azure.md §3).

What it speaks, as seen from azure-keyvault-secrets 4.12:
- a request without `Authorization: Bearer ...` gets `401` with the challenge `WWW-Authenticate: Bearer
  authorization="https://login.microsoftonline.com/<tenant>", resource="https://vault.azure.net"`;
  the client then asks its credential for a token and repeats the request;
- `GET /secrets/{name}[/{version}]?api-version=...` -> `200 {"value", "id", "attributes"}`;
  an unknown name -> `404 {"error": {"code": "SecretNotFound"}}` (SDK: ResourceNotFoundError);
  a name in `denied` -> `403 {"error": {"code": "Forbidden", "innererror": {"code": "ForbiddenByRbac"}}}`;
  a disabled secret -> `403 {"error": {"code": "Forbidden", "innererror": {"code": "SecretDisabled"}}}`;
- `GET /secrets?api-version=...` -> the list of secret ids.

The SDK refuses bearer tokens over http://, so the fake serves HTTPS with a certificate the caller gives it
(a self-signed one with SAN IP:127.0.0.1). Clients in tests need `verify_challenge_resource=False` (the
challenge's resource is vault.azure.net, not 127.0.0.1) and `connection_verify=<cert>`; never in production.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
_SECRET_PATH = re.compile(r"^/secrets/(?P<name>[0-9A-Za-z-]{1,127})(?:/(?P<version>[0-9a-f]*))?/?$")


@dataclass(frozen=True)
class SeenRequest:
    """One request the fake answered (for assertions: how many reads, with which token)."""

    method: str
    path: str
    authorization: str | None
    status: int


class KeyVaultFake:
    """A Key Vault with secrets in a dict. `url` is the vault URL to give SecretClient."""

    def __init__(
        self,
        cert_file: str,
        key_file: str,
        *,
        secrets: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        tenant_id: str = TENANT_ID,
        accepted_tokens: set[str] | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        # None: any bearer token is accepted; else only these (others get 401, as an expired token would).
        self.accepted_tokens = accepted_tokens
        self._lock = threading.Lock()
        self._secrets: dict[str, dict[str, Any]] = {}
        self.denied: set[str] = set()
        self.requests: list[SeenRequest] = []
        for name, value in (secrets or {}).items():
            self.set_secret(name, value)
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread: threading.Thread | None = None

    # --- control ------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"https://{host}:{port}"

    def start(self) -> KeyVaultFake:
        self._thread = threading.Thread(target=self._server.serve_forever, name="keyvault-fake", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> KeyVaultFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """No secrets, nothing denied, no requests seen."""
        with self._lock:
            self._secrets.clear()
            self.denied.clear()
            self.requests.clear()
            self.accepted_tokens = None

    def set_secret(self, name: str, value: str, *, enabled: bool = True) -> str:
        """Add a new version of `name`; returns the version id."""
        version = uuid.uuid4().hex
        now = int(time.time())
        with self._lock:
            self._secrets[name] = {"value": value, "version": version, "enabled": enabled, "created": now}
        return version

    def deny(self, name: str) -> None:
        """Answer 403 for this secret, as Key Vault does when the caller's identity has no role on it."""
        with self._lock:
            self.denied.add(name)

    def reads(self, name: str) -> int:
        """How many authenticated GETs of this secret were answered."""
        with self._lock:
            return sum(1 for r in self.requests if r.authorization and r.path.rstrip("/").split("/")[2:3] == [name])

    # --- protocol -----------------------------------------------------------------------------------
    def answer(self, method: str, target: str, authorization: str | None) -> tuple[int, dict[str, str], dict[str, Any]]:
        parts = urlsplit(target)
        status, headers, body = self._route(method, parts.path, parse_qs(parts.query), authorization)
        with self._lock:
            self.requests.append(SeenRequest(method, parts.path, authorization, status))
        return status, headers, body

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], authorization: str | None
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            challenge = (
                f'Bearer authorization="https://login.microsoftonline.com/{self.tenant_id}", '
                'resource="https://vault.azure.net"'
            )
            return 401, {"WWW-Authenticate": challenge}, _error(
                "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token."
            )
        if self.accepted_tokens is not None and token not in self.accepted_tokens:
            return 401, {}, _error("Unauthorized", "AKV10032: Invalid issuer or token.")
        if "api-version" not in query:
            return 400, {}, _error("BadParameter", "The 'api-version' query parameter is missing.")
        if method != "GET":
            return 405, {}, _error("BadParameter", f"{method} is not supported by this fake")
        if path.rstrip("/") == "/secrets":
            return 200, {}, self._list()
        match = _SECRET_PATH.match(path)
        if not match:
            return 404, {}, _error("NotFound", f"no route for {path}")
        return self._get(match["name"], match["version"] or None)

    def _get(self, name: str, version: str | None) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._lock:
            secret = self._secrets.get(name)
            denied = name in self.denied
        if denied:
            return 403, {}, _error(
                "Forbidden",
                f"Caller is not authorized to perform action on resource. Action: "
                f"'Microsoft.KeyVault/vaults/secrets/getSecret/action' Resource: 'secrets/{name}'",
                inner="ForbiddenByRbac",
            )
        if secret is None or (version and version != secret["version"]):
            return 404, {}, _error(
                "SecretNotFound",
                f"A secret with (name/id) {name}{'/' + version if version else ''} was not found in this key vault.",
            )
        if not secret["enabled"]:
            return 403, {}, _error(
                "Forbidden", "Operation get is not allowed on a disabled secret.", inner="SecretDisabled"
            )
        return 200, {}, {
            "value": secret["value"],
            "id": f"{self.url}/secrets/{name}/{secret['version']}",
            "attributes": {
                "enabled": True,
                "created": secret["created"],
                "updated": secret["created"],
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": 90,
            },
            "tags": {},
        }

    def _list(self) -> dict[str, Any]:
        with self._lock:
            items = [
                {"id": f"{self.url}/secrets/{name}", "attributes": {"enabled": s["enabled"], "created": s["created"]}}
                for name, s in sorted(self._secrets.items())
            ]
        return {"value": items, "nextLink": None}


def _error(code: str, message: str, *, inner: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if inner:
        error["innererror"] = {"code": inner}
    return {"error": error}


def _handler(fake: KeyVaultFake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._serve()

        def do_POST(self) -> None:  # noqa: N802
            self._serve()

        def do_PUT(self) -> None:  # noqa: N802
            self._serve()

        def do_DELETE(self) -> None:  # noqa: N802
            self._serve()

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            status, headers, body = fake.answer(self.command, self.path, self.headers.get("Authorization"))
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("x-ms-keyvault-service-version", "1.9.0.0")
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
            return

    return Handler
