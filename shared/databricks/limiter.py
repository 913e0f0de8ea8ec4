"""A per-workspace request limit for the Jobs API, shared by every invocation of one instance.

Databricks limits requests per workspace and per endpoint (Azure Databricks "Resource limits", API rate limits:
jobs create/get/list/run-now about 20/s, update about 10/s, runs/get about 100/s), and Functions scales out.
So each endpoint gets its own bucket, sized by its class (ENDPOINT_CLASSES, data): runs reads at
DATABRICKS_RUNS_REQUESTS_PER_SECOND, job-settings writes at DATABRICKS_JOB_WRITES_PER_SECOND, every other call
(jobs/get, repair, run-now ...) at DATABRICKS_REQUESTS_PER_SECOND, each under its documented limit. N
instances each at the full rate would multiply it, so every budget is divided by the configured maximum instance count (the Function App's
`maximumInstanceCount`): whatever the scale, the instances together stay under the budget, with no shared
state to read on every call. The price is that one busy instance uses only its share; a queue backlog is
spread over instances by the host anyway.

A call over the limit waits for its token (never fails because of our own limit); the wait is bounded by
`max_wait`, after which the call goes on and the wait is logged, so a misconfigured tiny rate cannot hold
a message past its visibility timeout.
"""

from __future__ import annotations

import logging
import re
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

    def acquire(self, path: str | None = None) -> float:
        """Take one token, waiting for it if needed; the seconds waited (`path` is ignored: one bucket)."""
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


# Which budget an endpoint's requests count against (its path after /api/<version>/). Anything not listed is
# "jobs": the documented ~20/s of jobs get/list/run-now, which repair and cancel are assumed to share.
ENDPOINT_CLASSES: dict[str, str] = {
    "jobs/runs/get": "runs",
    "jobs/runs/get-output": "runs",
    "jobs/runs/list": "runs",
    "clusters/get": "runs",
    "jobs/update": "job_writes",
    "jobs/reset": "job_writes",
    "jobs/delete": "job_writes",
}
DEFAULT_CLASS = "jobs"
_API_PATH = re.compile(r"^/?api/[^/]+/")


def endpoint_of(path: str | None) -> str:
    """'jobs/runs/get' for '/api/2.2/jobs/runs/get?run_id=1' (the query dropped); '' when unknown."""
    if not path:
        return ""
    return _API_PATH.sub("", path.split("?", 1)[0]).strip("/")


def class_of(endpoint: str) -> str:
    """The budget class of an endpoint ('runs', 'job_writes' or 'jobs')."""
    return ENDPOINT_CLASSES.get(endpoint, DEFAULT_CLASS)


@dataclass(frozen=True)
class RequestLimit:
    """The configured budget: requests per second per endpoint for a whole workspace, split across instances.

    `workspace_rate` is the budget of the "jobs" class; `class_rates` the other classes' ((name, rate) pairs)."""

    workspace_rate: float
    burst: float
    max_instances: int
    class_rates: tuple[tuple[str, float], ...] = ()

    @property
    def instance_rate(self) -> float:
        return self.workspace_rate / max(self.max_instances, 1)

    def rate_of(self, budget_class: str) -> float:
        """The workspace's budget for one endpoint of this class, all instances together."""
        return dict(self.class_rates).get(budget_class, self.workspace_rate)

    def bucket_shape(self, budget_class: str = DEFAULT_CLASS) -> tuple[float, float]:
        """(rate, burst) of one instance's bucket. A bucket lets through at most rate + burst requests in any
        one second, so the burst comes out of the share: no second ever sees more than the instance's share
        (as long as the share is at least one request a second), and all instances together stay under the
        workspace's budget. The burst is at most a fifth of the share, so most of it is steady rate; one
        request (or 5 %) of the share is kept back for jitter between taking a token and the request arriving."""
        share = self.rate_of(budget_class) / max(self.max_instances, 1)
        burst = max(1.0, min(float(self.burst), share * 0.2))
        # A token taken at the end of one second may arrive at the start of the next (threads, GIL, network):
        # keep a request's worth (or 5 %) of headroom so the workspace's count stays under the budget.
        headroom = max(1.0, share * 0.05) if share >= 4 else 0.0
        return max(share - burst - headroom, share * 0.1), burst


class WorkspaceBuckets:
    """The buckets of one workspace: one per endpoint, shaped by the endpoint's class; `acquire(path)` takes a
    token from the right one (a call without a path counts as the "jobs" class)."""

    def __init__(self, limit: RequestLimit, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self.limit = limit
        self._clock, self._sleep = clock, sleep
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def bucket(self, endpoint: str) -> TokenBucket:
        """The endpoint's bucket, made on first use."""
        with self._lock:
            found = self._buckets.get(endpoint)
            if found is None:
                rate, burst = self.limit.bucket_shape(class_of(endpoint) if endpoint else DEFAULT_CLASS)
                found = self._buckets[endpoint] = TokenBucket(rate, burst, clock=self._clock, sleep=self._sleep)
            return found

    def acquire(self, path: str | None = None) -> float:
        """Take one token for a request to `path`; the seconds waited."""
        return self.bucket(endpoint_of(path)).acquire()

    @property
    def waited(self) -> float:
        with self._lock:
            return sum(b.waited for b in self._buckets.values())


class WorkspaceLimiters:
    """The buckets of every workspace for this process (every invocation of the instance shares them)."""

    def __init__(self, limit: RequestLimit, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.limit = limit
        self._clock, self._sleep = clock, sleep
        self._workspaces: dict[str, WorkspaceBuckets] = {}
        self._lock = threading.Lock()

    def for_workspace(self, workspace: str) -> WorkspaceBuckets:
        """The workspace's buckets, made on first use."""
        with self._lock:
            found = self._workspaces.get(workspace)
            if found is None:
                found = self._workspaces[workspace] = WorkspaceBuckets(self.limit, self._clock, self._sleep)
            return found


_process: WorkspaceLimiters | None = None
_process_lock = threading.Lock()


def process_limiters(limit: RequestLimit) -> WorkspaceLimiters:
    """The limiters of this worker process: built once, so clients built per workspace still share a bucket."""
    global _process
    with _process_lock:
        if _process is None or _process.limit != limit:
            _process = WorkspaceLimiters(limit)
        return _process
