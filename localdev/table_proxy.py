"""A counting HTTP proxy for Azurite's Table endpoint: every Table Storage operation the app makes, by kind.

    python -m localdev.table_proxy --upstream-port 10002      # prints {"port": N} on its first line

Point the app's TableEndpoint at http://127.0.0.1:N/devstoreaccount1 (Shared Key signs the path, not the
host, so requests pass unchanged). GET /_proxy/counts answers {"<table> <kind> <status>": n}; POST
/_proxy/reset clears them. Loopback only; a benchmark tool, not part of the app.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade", "host"}
# /account/Table(PartitionKey='p',RowKey='r') or /account/Table() or /account/Table or /account/$batch
_PATH = re.compile(r"^/[^/]+/(?P<table>[^/(?]+)(?P<keys>\(.*\))?$")
# The first operation inside a $batch body names the table the whole transaction writes (one partition).
_BATCH_TABLE = re.compile(rb"(?:POST|PUT|MERGE|PATCH|DELETE|GET) https?://[^/\s]+/[^/\s]+/([^/(\s?]+)")


def operation_kind(method: str, path: str, headers: Any) -> tuple[str, str]:
    """(table, kind) of one Table REST request: create_table, insert, read, query, replace, upsert, merge,
    delete, batch."""
    match = _PATH.match(urlsplit(path).path)
    table = match.group("table") if match else "?"
    keys = (match.group("keys") or "") if match else ""
    if table == "Tables":
        return "(service)", {"POST": "create_table", "GET": "list_tables"}.get(method, "table_" + method.lower())
    if table == "$batch":
        return "(service)", "batch"
    point = "PartitionKey=" in keys
    if method == "GET":
        return table, "read" if point else "query"
    if method == "POST":
        return table, "insert"
    if method == "PUT":
        return table, "replace" if headers.get("If-Match") not in (None, "*") else "upsert"
    if method in ("PATCH", "MERGE"):
        return table, "merge"
    if method == "DELETE":
        return table, "delete"
    return table, method.lower()


class Counts:
    """Thread-safe counters of operations: "table kind status" -> n."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter = Counter()

    def add(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


def make_server(upstream_port: int, port: int = 0) -> ThreadingHTTPServer:
    """A proxy to 127.0.0.1:`upstream_port` on 127.0.0.1:`port` (0: a free one); serve_forever() to run it."""
    counts = Counts()
    local = threading.local()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
            pass

        def _forward(self) -> None:
            if self.path.startswith("/_proxy/"):
                if self.command == "POST" and self.path == "/_proxy/reset":
                    counts.reset()
                self._reply(200, [("Content-Type", "application/json")], json.dumps(counts.snapshot()).encode())
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            status, reply_headers, data = _upstream(local, upstream_port, self.command, self.path, body, headers)
            table, kind = operation_kind(self.command, self.path, self.headers)
            if kind == "batch" and body and (found := _BATCH_TABLE.search(body)):
                table = found.group(1).decode("ascii", "replace")  # counted under the table it writes
            counts.add(f"{table} {kind} {status}")
            self._reply(status, reply_headers, data)

        def _reply(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
            self.send_response_only(status)
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_MERGE = _forward  # noqa: N815

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


def _upstream(local: threading.local, port: int, method: str, path: str, body: bytes | None,
              headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
    """One request to Azurite on this thread's kept-alive connection (reopened once if Azurite closed it)."""
    for attempt in (1, 2):
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.request(method, path, body=body, headers={**headers, "Host": f"127.0.0.1:{port}"})
            answer = conn.getresponse()
            return answer.status, answer.getheaders(), answer.read()
        except (http.client.HTTPException, ConnectionError):
            conn.close()
            local.conn = None
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.table_proxy", description=__doc__.splitlines()[0])
    parser.add_argument("--upstream-port", type=int, required=True, help="Azurite's table port on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: a free one)")
    args = parser.parse_args(argv)
    server = make_server(args.upstream_port, args.port)
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
