"""How one Jobs API call is retried: urllib3's Retry on requests' HTTPAdapter, explained in the logs, with
Retry-After honoured up to a cap and the total wait of a call bounded (see client.py's docstring for what is
retried where)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from shared.databricks.errors import parse_retry_after

log = logging.getLogger("shared.databricks.client")  # one logger for the client's calls and their retries

_REFUSED_STATUSES = frozenset({429, 503})
_AMBIGUOUS_STATUSES = frozenset({500, 502, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one call tries; every figure is in seconds except `retries`.

    Worst case for one call: (retries + 1) x the read timeout + budget; with the defaults and a 30 s timeout,
    150 s, inside a queue function's time limit. Anything longer is the queue's job (visibility timeout).
    """

    retries: int = 3
    backoff_factor: float = 1.0  # 1, 2, 4 ... s
    backoff_max: float = 10.0
    jitter: float = 0.5
    default_retry_after: float = 1.0  # least wait on 429/503 without Retry-After (the Databricks SDK's 1 s)
    max_retry_after: float = 30.0
    budget: float = 30.0  # total seconds of waiting between the tries of one call


class _Retry(Retry):
    """urllib3 Retry that logs why it retries, refuses long Retry-After waits and caps the total wait."""

    def __init__(
        self,
        *args: Any,
        policy: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
        waited: float = 0.0,
        throttle: Callable[[str | None], float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.policy = policy
        self.sleep_fn = sleep
        self.throttle = throttle  # the workspace's request limit: every retry is a request too
        self.waited = waited  # seconds slept so far in this call
        self.next_wait = 0.0

    def new(self, **kw: Any) -> _Retry:
        return super().new(**{"policy": self.policy, "sleep": self.sleep_fn, "waited": self.waited,
                              "throttle": self.throttle, **kw})

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):  # noqa: ANN001
        new = super().increment(method, url, response, error, _pool, _stacktrace)  # raises when exhausted
        path = urlsplit(url or "").path
        new.retry_path = path  # the retry takes a token of this endpoint's budget
        if response is not None:
            reason = f"HTTP {response.status}"
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None and retry_after > self.policy.max_retry_after:
                log.warning(
                    "not waiting %.0fs for Retry-After inside the call; giving up so the message is retried later",
                    retry_after, extra={"method": method, "path": path, "status": response.status},
                )
                raise MaxRetryError(_pool, url, ResponseError(f"Retry-After {retry_after:g}s over the cap"))
            if retry_after is not None:
                wait = retry_after
            elif response.status in _REFUSED_STATUSES:  # overloaded and silent on when: at least the default
                wait = max(self.policy.default_retry_after, self._backoff(len(new.history)))
            else:
                wait = self._backoff(len(new.history))
        else:
            reason = f"{type(error).__name__}: {error}"
            wait = self._backoff(len(new.history))
        if self.waited + wait > self.policy.budget:
            log.warning("retry budget of %.0fs spent; giving up", self.policy.budget,
                        extra={"method": method, "path": path, "reason": reason})
            raise MaxRetryError(_pool, url, error or ResponseError(f"{reason}; retry budget spent"))
        new.waited = self.waited + wait
        new.next_wait = wait
        log.warning(
            "retrying %s %s in %.1fs (attempt %d): %s", method, path, wait, len(new.history) + 1, reason,
            extra={"method": method, "path": path, "reason": reason, "wait_s": wait},
        )
        return new

    def _backoff(self, attempt: int) -> float:
        base = min(self.policy.backoff_max, self.policy.backoff_factor * 2 ** (attempt - 1))
        return base + random.uniform(0, self.policy.jitter)  # noqa: S311 - jitter, not security

    def sleep(self, response=None) -> None:  # noqa: ANN001
        if self.next_wait > 0:
            self.sleep_fn(self.next_wait)
        if self.throttle is not None:
            self.throttle(getattr(self, "retry_path", None))


def adapter(policy: RetryPolicy, sleep: Callable[[float], None], *, idempotent: bool,
            throttle: Callable[[str | None], float] | None = None) -> HTTPAdapter:
    retry = _Retry(
        total=policy.retries,
        connect=policy.retries,
        read=policy.retries if idempotent else False,
        status=policy.retries,
        other=0,
        allowed_methods=None,  # which calls may be repeated is decided by path (idempotent), not by verb
        status_forcelist=_REFUSED_STATUSES | (_AMBIGUOUS_STATUSES if idempotent else frozenset()),
        raise_on_status=False,  # hand back the last answer, so it becomes a typed error
        respect_retry_after_header=True,
        policy=policy,
        sleep=sleep,
        throttle=throttle,
    )
    return HTTPAdapter(max_retries=retry)
