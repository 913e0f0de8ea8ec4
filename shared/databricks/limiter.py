"""A per-workspace request limit for the Jobs API, shared by every invocation of one instance.

Databricks limits requests per workspace (reference: jobs get/list/run-now about 20/s, update about 10/s,
runs/get about 100/s), and Functions scales out: N instances each at the full rate would multiply it. So the
workspace's budget is divided by the configured maximum instance count (the Function App's
`maximumInstanceCount`): whatever the scale, the instances together stay under the budget, with no shared
state to read on every call. The price is that one busy instance uses only its share; a queue backlog is
spread over instances by the host anyway.

A call over the limit waits for its token (never fails because of our own limit); the wait is bounded by
`max_wait`, after which the call goes on and the wait is logged, so a misconfigured tiny rate cannot hold
a message past its visibility timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class TokenBucket:
    """`rate` tokens per second, up to `burst` saved; thread-safe."""

    rate: float
    burst: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    max_wait: float = 60.0
    _tokens: float = field(init=False)
    _at: float = field(init=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    waited: float = field(init=False, default=0.0)  # total seconds callers waited (bench and tests read it)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self._tokens, self._at = self.burst, self.clock()

    def acquire(self) -> float:
        """Take one token, waiting for it if needed; the seconds waited."""
        with self._lock:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            # Reserve the token now (it may go negative): callers queue in order, each sleeping its own share.
            self._tokens -= 1
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
        if wait > self.max_wait:
            log.warning("Jobs API limit: a call would wait %.1f s; going on after %.1f s", wait, self.max_wait)
            wait = self.max_wait
        if wait > 0:
            self.sleep(wait)
            with self._lock:
                self.waited += wait
        return wait


@dataclass(frozen=True)
class RequestLimit:
    """The configured budget: requests per second for a whole workspace, split across instances."""

    workspace_rate: float
    burst: float
    max_instances: int

    @property
    def instance_rate(self) -> float:
        return self.workspace_rate / max(self.max_instances, 1)

    def bucket_shape(self) -> tuple[float, float]:
        """(rate, burst) of one instance's bucket. A bucket lets through at most rate + burst requests in any
        one second, so the burst comes out of the share: no second ever sees more than the instance's share
        (as long as the share is at least one request a second), and all instances together stay under the
        workspace's budget. The burst is at most a fifth of the share, so most of it is steady rate."""
        share = self.instance_rate
        burst = max(1.0, min(float(self.burst), share * 0.2))
        return max(share - burst, share * 0.1), burst


class WorkspaceLimiters:
    """One bucket per workspace for this process (every invocation of the instance shares it)."""

    def __init__(self, limit: RequestLimit, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.limit = limit
        self._clock, self._sleep = clock, sleep
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def for_workspace(self, workspace: str) -> TokenBucket:
        """The workspace's bucket, made on first use."""
        with self._lock:
            bucket = self._buckets.get(workspace)
            if bucket is None:
                rate, burst = self.limit.bucket_shape()
                bucket = self._buckets[workspace] = TokenBucket(rate, burst, clock=self._clock, sleep=self._sleep)
            return bucket


_process: WorkspaceLimiters | None = None
_process_lock = threading.Lock()


def process_limiters(limit: RequestLimit) -> WorkspaceLimiters:
    """The limiters of this worker process: built once, so clients built per workspace still share a bucket."""
    global _process
    with _process_lock:
        if _process is None or _process.limit != limit:
            _process = WorkspaceLimiters(limit)
        return _process
