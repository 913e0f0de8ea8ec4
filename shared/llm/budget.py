"""A daily cap on LLM calls and estimated cost; past it, analysis is rules-only until the next UTC day.

The day's totals live in the state table (PartitionKey "llm-budget", RowKey the UTC date) so every worker
sees them. Updates are read-modify-write without a lock or ETag: with several workers calling at the same
moment a few calls can go uncounted, so the cap is approximate (off by at most the number of concurrent
calls). A worker also counts in memory, and trusts the larger of the two, so a storage outage does not
lift the cap for it. A storage error never stops a decision: it is logged, and the memory count rules.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import date, datetime

from shared.decision import utcnow
from shared.state import StateStore

log = logging.getLogger(__name__)

KIND = "llm-budget"


class DailyBudget:
    """`spent()` says why the day's budget is gone (None while there is some left); `charge()` counts a call."""

    def __init__(
        self,
        store: StateStore | None,
        *,
        max_calls: int,
        max_cost_usd: float,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self.max_calls = max_calls
        self.max_cost_usd = max_cost_usd
        self._clock = clock
        self._lock = threading.Lock()
        self._day: date | None = None
        self._calls = 0
        self._cost = 0.0
        self._warned: date | None = None

    def spent(self) -> str | None:
        """Why no more calls are allowed today, or None. Logs a warning the first time each day."""
        if not self.max_calls and not self.max_cost_usd:
            return None
        calls, cost = self.totals()
        reason = None
        if self.max_calls and calls >= self.max_calls:
            reason = f"daily LLM budget spent: {calls} of {self.max_calls} calls (LLM_DAILY_MAX_CALLS)"
        elif self.max_cost_usd and cost >= self.max_cost_usd:
            reason = (f"daily LLM budget spent: ${cost:.4f} of ${self.max_cost_usd:.2f} "
                      "(LLM_DAILY_BUDGET_USD)")
        if reason:
            today = self._today()
            with self._lock:
                first = self._warned != today
                self._warned = today
            if first:
                log.warning("%s; rules only until 00:00 UTC", reason, extra={"calls": calls, "cost_usd": cost})
        return reason

    def totals(self) -> tuple[int, float]:
        """Today's (calls, cost in USD): the larger of this worker's count and the shared one."""
        today = self._today()
        stored = self._read(today)
        with self._lock:
            self._roll(today)
            return max(self._calls, stored[0]), max(self._cost, stored[1])

    def charge(self, cost_usd: float) -> None:
        """Count one call (failed calls too: the service may bill them) and its estimated cost."""
        today = self._today()
        stored = self._read(today)
        with self._lock:
            self._roll(today)
            self._calls = max(self._calls, stored[0]) + 1
            self._cost = round(max(self._cost, stored[1]) + cost_usd, 6)
            calls, cost = self._calls, self._cost
        if self._store is None:
            return
        try:
            self._store.put(KIND, today.isoformat(), {"calls": calls, "cost_usd": cost})
        except Exception as exc:  # noqa: BLE001 - the count is approximate anyway; never fail a decision on it
            log.warning("could not record LLM usage in the state table: %s", exc)

    def _read(self, today: date) -> tuple[int, float]:
        if self._store is None:
            return 0, 0.0
        try:
            doc = self._store.get(KIND, today.isoformat()) or {}
            return int(doc.get("calls", 0)), float(doc.get("cost_usd", 0.0))
        except Exception as exc:  # noqa: BLE001 - fall back to this worker's own count
            log.warning("could not read LLM usage from the state table: %s", exc)
            return 0, 0.0

    def _roll(self, today: date) -> None:
        if self._day != today:
            self._day, self._calls, self._cost = today, 0, 0.0

    def _today(self) -> date:
        return self._clock().date()
