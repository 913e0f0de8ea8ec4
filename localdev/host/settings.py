"""host.json options the harness honours, and `%SETTING%` resolution in trigger and binding properties."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from localdev.host.exceptions import SettingNotFoundError

_SETTING = re.compile(r"%([^%]+)%")
_TIMESPAN = re.compile(r"^(?:(?P<days>\d+)\.)?(?P<h>\d+):(?P<m>\d+):(?P<s>\d+(?:\.\d+)?)$")

# Azure's default maxPollingInterval is one minute. A local harness that backs off to a minute makes demos and
# tests wait for nothing, so unless host.json sets it the harness caps the back-off at two seconds. Messages the
# host writes itself wake the listener at once, as the real host's shared queue watcher does.
HARNESS_MAX_POLLING_INTERVAL = 2.0


def worker_threads(env: Mapping[str, str]) -> int:
    """How many sync invocations the Python worker runs at once: its thread pool, PYTHON_THREADPOOL_THREAD_COUNT
    (1..32), by default min(32, CPUs + 4) (Python's ThreadPoolExecutor default, which the worker uses; "Improve
    throughput performance of Python apps in Azure Functions", learn.microsoft.com). Every function shares it."""
    import os

    value = env.get("PYTHON_THREADPOOL_THREAD_COUNT")
    if value:
        count = int(value)
        if not 1 <= count <= 32:
            raise ValueError(f"PYTHON_THREADPOOL_THREAD_COUNT must be 1..32, got {count}")
        return count
    return min(32, (os.cpu_count() or 1) + 4)


def resolve_settings(value: str, env: Mapping[str, str]) -> str:
    """Replace every `%NAME%` in value with env[NAME], as the Functions host does when it indexes functions."""

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise SettingNotFoundError(f"'%{name}%' does not resolve to a value: no setting named {name!r}")
        return env[name]

    return _SETTING.sub(lookup, value)


def parse_timespan(value: Any) -> float:
    """Seconds in a host.json TimeSpan ("hh:mm:ss", "d.hh:mm:ss", fractions allowed); a bare number is milliseconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a TimeSpan: {value!r}")
    if isinstance(value, (int, float)):
        return value / 1000.0
    match = _TIMESPAN.match(str(value).strip())
    if not match:
        raise ValueError(f"not a TimeSpan (expected hh:mm:ss): {value!r}")
    days = int(match.group("days") or 0)
    return days * 86400 + int(match.group("h")) * 3600 + int(match.group("m")) * 60 + float(match.group("s"))


@dataclass(frozen=True)
class QueueOptions:
    """`extensions.queues` of host.json, with the documented defaults (Consumption plan: one vCPU)."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0
    max_polling_interval: float = HARNESS_MAX_POLLING_INTERVAL
    message_encoding: str = "base64"

    @classmethod
    def from_host_json(cls, host_json: Mapping[str, Any]) -> QueueOptions:
        queues = (host_json.get("extensions") or {}).get("queues") or {}
        batch_size = int(queues.get("batchSize", cls.batch_size))
        if not 1 <= batch_size <= 32:
            raise ValueError(f"host.json extensions.queues.batchSize must be 1..32, got {batch_size}")
        encoding = str(queues.get("messageEncoding", cls.message_encoding)).lower()
        if encoding not in ("base64", "none"):
            raise ValueError(f"host.json extensions.queues.messageEncoding must be base64 or none, got {encoding!r}")
        polling = queues.get("maxPollingInterval")
        return cls(
            batch_size=batch_size,
            new_batch_threshold=int(queues.get("newBatchThreshold", batch_size // 2)),
            max_dequeue_count=int(queues.get("maxDequeueCount", cls.max_dequeue_count)),
            visibility_timeout=parse_timespan(queues.get("visibilityTimeout", "00:00:00")),
            max_polling_interval=max(0.1, parse_timespan(polling)) if polling is not None
            else HARNESS_MAX_POLLING_INTERVAL,
            message_encoding=encoding,
        )


def route_prefix(host_json: Mapping[str, Any]) -> str:
    """`extensions.http.routePrefix` of host.json; "api" unless set (an empty string means no prefix)."""
    http = (host_json.get("extensions") or {}).get("http") or {}
    return str(http.get("routePrefix", "api")).strip("/")


@contextlib.contextmanager
def app_environment(env: Mapping[str, str]) -> Iterator[None]:
    """The app's settings in os.environ for the block (the worker reads them there), the old values back after."""
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
