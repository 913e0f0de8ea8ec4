"""The simulator's fault controls: one-shot faults (throttle, fail_with, stall), seeded injection rules (inject),
per-endpoint counters, and the /sim/ admin routes that drive them from another process.

A mixin of DatabricksSimulator; expects `_lock`, `_faults` and `faults` (a FaultPlan).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from localdev.databricks_sim.errors import ApiError, invalid
from localdev.databricks_sim.faults import FaultPlan, FaultRule

_DEFAULT_FAULTS = {
    429: ("REQUEST_LIMIT_EXCEEDED", "Too many requests. Please wait a moment and try again."),
    500: ("INTERNAL_ERROR", "Internal error. Please try again later."),
    503: ("TEMPORARILY_UNAVAILABLE", "The service is temporarily unavailable. Please try again later."),
}
# Gateways in front of a workspace answer these with an HTML page, not the JSON error body.
_GATEWAY_PAGES = {
    502: "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>",
    504: "<html><head><title>504 Gateway Time-out</title></head><body><center><h1>504 Gateway Time-out</h1></center></body></html>",
}


@dataclass
class Fault:
    """An answer injected instead of the real one (or a delay before it)."""

    status: int | None
    error_code: str | None
    message: str
    retry_after: float | None
    delay: float
    path: str | None
    body: str | None
    remaining: int


class FaultControls:
    """Faults and counters on the simulator object."""

    _lock: threading.Lock
    _faults: list[Fault]
    faults: FaultPlan
    _latency: tuple[float, str | None] = (0.0, None)  # (seconds, path substring or None: every API path)

    def set_latency(self, seconds: float, path: str | None = None) -> None:
        """Delay every API answer (to paths containing `path`) by `seconds`, as a workspace far away does; 0 ends it.

        The delay is spent before the workspace is touched and outside its lock, so concurrent requests overlap
        as they do against a real workspace (a benchmark measures the agent's concurrency, not the simulator's)."""
        seconds = float(seconds)
        if not 0.0 <= seconds <= 60.0:
            raise ValueError("latency must be between 0 and 60 seconds")
        self._latency = (seconds, path)

    def latency_for(self, path: str) -> float:
        """The added delay of a request to `path` (admin routes are never delayed)."""
        seconds, only = self._latency
        return seconds if seconds and (only is None or only in path) else 0.0

    def throttle(self, times: int = 1, *, retry_after: float | None = 0, path: str | None = None) -> None:
        """Answer the next `times` requests (to paths containing `path`) with 429 and Retry-After."""
        self.fail_with(429, times=times, retry_after=retry_after, path=path)

    def fail_with(
        self,
        status: int = 503,
        *,
        times: int = 1,
        error_code: str | None = None,
        message: str | None = None,
        retry_after: float | None = None,
        path: str | None = None,
        body: str | None = None,
    ) -> None:
        """Answer the next `times` matching requests with `status` (JSON error body; 502/504 an HTML page)."""
        code, text = _DEFAULT_FAULTS.get(status, (None, f"HTTP {status}"))
        if body is None and error_code is None and status in _GATEWAY_PAGES:
            body = _GATEWAY_PAGES[status]
        fault = Fault(status, error_code or code or "UNKNOWN", message or text, retry_after, 0.0, path, body, times)
        with self._lock:
            self._faults.append(fault)

    def stall(self, seconds: float, *, times: int = 1, path: str | None = None) -> None:
        """Hold the next `times` matching requests for `seconds`, then process them normally."""
        with self._lock:
            self._faults.append(Fault(None, None, "", None, seconds, path, None, times))

    def inject(
        self,
        kinds: str | Iterable[str],
        *,
        path: str | None = None,
        method: str | None = None,
        fraction: float = 1.0,
        times: int | None = None,
        seed: int = 0,
        retry_after: float = 1.0,
        stall_s: float = 2.0,
    ) -> FaultRule:
        """Inject faults (faults.py: throttle, throttle_bare, error, unavailable, stall, lost_drop, lost_500,
        lost_stall, lock, unexpected, faster) into `fraction` of the requests whose path contains `path`
        (None: all), at most `times` of them; with several kinds each hit picks one. Seeded, deterministic."""
        return self.faults.add(kinds, path=path, method=method, fraction=fraction, times=times, seed=seed,
                               retry_after=retry_after, stall_s=stall_s)

    def limit_rate(self, per_s: float, *, path: str | None = None) -> None:
        """Answer 429 (Retry-After: 1) to requests (to paths containing `path`) beyond `per_s` in any second."""
        self.faults.limit_rate(per_s, path)

    def clear_faults(self) -> None:
        """Remove every injection rule and one-shot fault (the counters stay)."""
        self.faults.clear()
        with self._lock:
            self._faults.clear()

    def request_count(self, op: str, method: str | None = None) -> int:
        """Requests received for `op` ("jobs/runs/repair"), faulted ones included."""
        return _count(self.faults.received, op, method)

    def applied_count(self, op: str, method: str | None = None) -> int:
        """Requests for `op` that reached the workspace and succeeded, including those whose answer was lost."""
        return _count(self.faults.applied, op, method)

    def peak_rate(self, window_s: float = 1.0) -> int:
        """The most API requests received within any `window_s` seconds."""
        return self.faults.peak_rate(window_s)

    def take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and (fault.path is None or fault.path in path):
                    fault.remaining -= 1
                    return fault
            return None

    def admin(self, method: str, op: str, body: dict[str, Any]) -> dict[str, Any]:
        """The /sim/ routes: fault rules and counters for a simulator in another process."""
        if (method, op) == ("POST", "faults"):
            options = {k: body[k] for k in ("path", "method", "fraction", "times", "seed", "retry_after", "stall_s")
                       if body.get(k) is not None}
            try:
                return self.inject(body.get("kinds") or [], **options).to_json()
            except (TypeError, ValueError) as exc:
                raise invalid(str(exc)) from exc
        if (method, op) == ("POST", "faults/rate-limit"):
            try:
                self.limit_rate(float(body.get("per_s", 0)), path=body.get("path"))
            except (TypeError, ValueError) as exc:
                raise invalid(str(exc)) from exc
            return {}
        if (method, op) == ("POST", "latency"):
            try:
                self.set_latency(body.get("seconds", 0), path=body.get("path"))
            except (TypeError, ValueError) as exc:
                raise invalid(str(exc)) from exc
            return {"seconds": self._latency[0], "path": self._latency[1]}
        if (method, op) == ("POST", "faults/clear"):
            self.clear_faults()
            return {}
        if (method, op) == ("GET", "stats"):
            return {**self.faults.stats(), "peak_rate": self.peak_rate(),
                    "peak_rate_by_endpoint": self.faults.peak_rates()}
        if (method, op) == ("POST", "outage"):
            cause = {k: body[k] for k in ("termination_code", "reason", "type", "azure_error_code", "message",
                                          "parameters") if k in body}
            return self.start_outage(body.get("seconds"), **cause)  # type: ignore[attr-defined]
        if (method, op) == ("GET", "outage"):
            return self.outage()  # type: ignore[attr-defined]
        if (method, op) == ("POST", "trigger"):
            try:
                return {"run_id": self.trigger_run(int(body.get("job_id")))}  # type: ignore[attr-defined]
            except (TypeError, ValueError) as exc:
                raise invalid("job_id must be a job's id.") from exc
        if (method, op) == ("POST", "stats/reset"):
            self.faults.reset_counts()
            return {}
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No admin route '{method} /sim/{op}'")


def _count(counter: Any, op: str, method: str | None) -> int:
    op = op.strip("/")
    total = 0
    for key, n in counter.items():
        verb, _, seen = key.partition(" ")
        if (seen == op or seen.endswith("/" + op)) and method in (None, verb):
            total += n
    return total
