"""Fault injection and request counting for the simulator: seeded, per endpoint, by fraction and/or count.

Kinds (what a matching request gets instead of, or on top of, its real answer):
    throttle        429 REQUEST_LIMIT_EXCEEDED with Retry-After (`retry_after` seconds)
    throttle_bare   429 without Retry-After
    error           500 INTERNAL_ERROR
    unavailable     503 TEMPORARILY_UNAVAILABLE with Retry-After
    stall           held `stall_s` seconds, then processed and answered (the client has usually given up;
                    a POST still takes effect, late)
    lost_drop       processed (the action TAKES EFFECT), then the connection is closed without an answer
    lost_500        processed, then answered 500 as if it had not been
    lost_stall      processed, then the answer is held `stall_s` seconds (past the client's read timeout)
    lock            400 COULD_NOT_ACQUIRE_LOCK (retried by the Airflow provider)
    unexpected      400 whose message contains "Unexpected error" (retried by databricks-sdk by text)
    faster          400 "Please try again later or try a faster operation." (retried by databricks-sdk)
`kinds="chaos"` is all of them (CHAOS). `limit_rate(per_s, path)` adds a rate limit: 429 with Retry-After 1 for
requests beyond `per_s` within one second. The refusals (throttle … faster) are answered without touching the workspace; `lost_*` are the dangerous
ones: the workspace changed but the client cannot know. Which request is hit is decided from (seed, rule,
endpoint, n-th request to that endpoint the rule saw), so a rerun with the same requests hits the same ones.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

REFUSALS: dict[str, tuple[int, str, str, bool]] = {
    # kind: (status, error_code, message, sends Retry-After)
    "throttle": (429, "REQUEST_LIMIT_EXCEEDED", "Too many requests. Please wait a moment and try again.", True),
    "throttle_bare": (429, "REQUEST_LIMIT_EXCEEDED", "Too many requests. Please wait a moment and try again.", False),
    "error": (500, "INTERNAL_ERROR", "Internal error. Please try again later.", False),
    "unavailable": (503, "TEMPORARILY_UNAVAILABLE", "The service is temporarily unavailable. Please try again later.",
                    True),
    "lock": (400, "COULD_NOT_ACQUIRE_LOCK", "Could not acquire the lock on the job. Please retry.", False),
    "unexpected": (400, "BAD_REQUEST", "Unexpected error while processing the request.", False),
    "faster": (400, "BAD_REQUEST", "Please try again later or try a faster operation.", False),
}
AFTER_EFFECT = frozenset({"lost_drop", "lost_500", "lost_stall"})
# The mix of a bad day: every transient refusal and every way to lose an answer (sim.inject(CHAOS, fraction=0.2)).
CHAOS = ("throttle", "throttle_bare", "error", "unavailable", "stall", "lost_drop", "lost_500", "lost_stall",
         "lock", "unexpected", "faster")
KINDS = frozenset(REFUSALS) | AFTER_EFFECT | {"stall"}
LOST_500 = (500, "INTERNAL_ERROR", "Internal error. Please try again later.")


@dataclass
class FaultRule:
    """One injection rule. `path`: a substring of the request path (None: every API path)."""

    kinds: tuple[str, ...]
    path: str | None = None
    method: str | None = None
    fraction: float = 1.0
    times: int | None = None  # at most this many hits (None: unlimited)
    seed: int = 0
    retry_after: float = 1.0
    stall_s: float = 2.0
    rule_id: int = 0
    hits: int = 0
    seen: Counter = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.rule_id, "kinds": list(self.kinds), "path": self.path, "method": self.method,
                "fraction": self.fraction, "times": self.times, "seed": self.seed, "hits": self.hits}


@dataclass(frozen=True)
class Hit:
    """What one request gets: a refusal before the workspace is touched, or a loss after it acted."""

    kind: str
    status: int | None = None
    error_code: str | None = None
    message: str = ""
    retry_after: float | None = None
    delay: float = 0.0

    @property
    def after_effect(self) -> bool:
        return self.kind in AFTER_EFFECT


class FaultPlan:
    """The active rules and the per-endpoint request counters, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._next_id = 1
        self.received: Counter = Counter()  # "METHOD op" -> requests received (faulted ones included)
        self.applied: Counter = Counter()  # "METHOD op" -> requests that reached the workspace and succeeded
        self.injected: Counter = Counter()  # "METHOD op kind" -> faults injected
        self._times: deque[float] = deque(maxlen=200_000)
        self._times_by_op: dict[str, deque[float]] = {}  # "METHOD op" -> when each request came
        self._limits: list[tuple[str | None, float, deque[float]]] = []  # (path, per second, recent accepted)

    def add(self, kinds: str | Iterable[str], **options: Any) -> FaultRule:
        chosen = (kinds,) if isinstance(kinds, str) else tuple(kinds)
        if chosen == ("chaos",):
            chosen = CHAOS
        unknown = [k for k in chosen if k not in KINDS]
        if not chosen or unknown:
            raise ValueError(f"unknown fault kinds {unknown}; known: {sorted(KINDS)}")
        fraction = float(options.get("fraction", 1.0))
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("fraction must be between 0 and 1")
        with self._lock:
            rule = FaultRule(chosen, rule_id=self._next_id, **options)
            self._next_id += 1
            self._rules.append(rule)
            return rule

    def limit_rate(self, per_s: float, path: str | None = None) -> None:
        """429 (Retry-After: 1) for requests beyond `per_s` in any second, as the workspace's rate limits do."""
        if per_s <= 0:
            raise ValueError("per_s must be positive")
        with self._lock:
            self._limits.append((path, float(per_s), deque()))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._limits.clear()
            self._next_id = 1

    def reset_counts(self) -> None:
        with self._lock:
            self.received.clear()
            self.applied.clear()
            self.injected.clear()
            self._times.clear()
            self._times_by_op.clear()

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def count(self, method: str, op: str) -> None:
        with self._lock:
            self.received[f"{method} {op}"] += 1
            now = time.monotonic()
            self._times.append(now)
            self._times_by_op.setdefault(f"{method} {op}", deque(maxlen=200_000)).append(now)

    def count_applied(self, method: str, op: str) -> None:
        with self._lock:
            self.applied[f"{method} {op}"] += 1

    def decide(self, method: str, path: str, op: str) -> Hit | None:
        """The fault for this request, if a rate limit or a rule picks it (the first that fires wins)."""
        with self._lock:
            now = time.monotonic()
            for limit_path, per_s, recent in self._limits:
                if limit_path is not None and limit_path not in path:
                    continue
                while recent and now - recent[0] >= 1.0:
                    recent.popleft()
                if len(recent) >= per_s:
                    self.injected[f"{method} {op} rate_limit"] += 1
                    status, code, message, _ = REFUSALS["throttle"]
                    return Hit("rate_limit", status, code, message, 1.0)
                recent.append(now)
            for rule in self._rules:
                if (rule.path is not None and rule.path not in path) or (rule.method and rule.method != method):
                    continue
                if rule.times is not None and rule.hits >= rule.times:
                    continue
                n = rule.seen[op]
                rule.seen[op] += 1
                draw = _uniform(rule.seed, op, n)
                if draw >= rule.fraction:
                    continue
                rule.hits += 1
                kind = rule.kinds[int(_uniform(rule.seed + 7919, op, n) * len(rule.kinds))]
                self.injected[f"{method} {op} {kind}"] += 1
                return _hit(kind, rule)
            return None

    def peak_rate(self, window_s: float = 1.0) -> int:
        """The most requests received within any `window_s` seconds."""
        with self._lock:
            times = list(self._times)
        return _peak(times, window_s)

    def peak_rates(self, window_s: float = 1.0) -> dict[str, int]:
        """Per endpoint ("METHOD op"): the most requests received within any `window_s` seconds (Databricks
        limits each endpoint separately)."""
        with self._lock:
            by_op = {op: list(times) for op, times in self._times_by_op.items()}
        return {op: _peak(times, window_s) for op, times in sorted(by_op.items())}

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"received": dict(self.received), "applied": dict(self.applied),
                    "injected": dict(self.injected), "rules": [r.to_json() for r in self._rules]}


def _peak(times: list[float], window_s: float) -> int:
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] > window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


def _hit(kind: str, rule: FaultRule) -> Hit:
    if kind in REFUSALS:
        status, code, message, with_retry_after = REFUSALS[kind]
        return Hit(kind, status, code, message, rule.retry_after if with_retry_after else None)
    if kind == "lost_500":
        return Hit(kind, *LOST_500)
    return Hit(kind, delay=rule.stall_s if kind in ("stall", "lost_stall") else 0.0)


def _uniform(seed: int, op: str, n: int) -> float:
    digest = hashlib.sha256(f"{seed}:{op}:{n}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
