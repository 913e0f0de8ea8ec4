"""When an incident acts: plain functions of its state and the time (passed in), so tests need no clock.

Joining (window), updates (at most one per recipient list per interval), the canary's backoff with jitter,
the release spread, escalation once, and the quiet end of an incident whose reruns were never held.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta

from shared.incidents.model import Audience, Incident

JITTER = 0.2  # +-20 %


def joins(incident: Incident, now: datetime, window_seconds: int) -> bool:
    """A failure with the incident's cause joins it: it is open, and either holding reruns (the outage lasts
    until its canary succeeds) or its last member is at most the window old."""
    if incident.state != "open":
        return False
    return incident.holds or now - incident.last_seen <= timedelta(seconds=window_seconds)


def canary_delay(canaries: int, base_seconds: int, max_seconds: int, rand: Callable[[], float]) -> float:
    """Seconds before the next canary, after `canaries` failed or released ones: base x 2^n, capped, +-20 %.

    `rand` returns a float in [0, 1) (random.random in production, fixed in tests).
    """
    nominal = min(float(base_seconds) * 2 ** min(canaries, 32), float(max_seconds))
    return nominal * (1 - JITTER + 2 * JITTER * rand())


def spread(incident_id: str, canaries: int) -> Callable[[], float]:
    """The jitter's draw for one wait of one incident, in [0, 1): different across incidents (their canaries do
    not fall in step), the same for one wait however many drivers compute it (no shared random state)."""
    digest = hashlib.sha256(f"{incident_id}|{canaries}".encode()).digest()
    return lambda: int.from_bytes(digest[:8], "big") / 2**64


def release_offsets(count: int, spread_seconds: int) -> list[float]:
    """Seconds after the recovery at which each of `count` held reruns goes out: evenly over the spread."""
    if count <= 0:
        return []
    return [spread_seconds * i / count for i in range(count)]


def update_due(audience: Audience, job_count: int, now: datetime, update_seconds: int) -> bool:
    """An update to this recipient list: jobs joined since its last notice, and the interval has passed."""
    if audience.told_at is None or job_count <= audience.jobs_told:
        return False
    return now - audience.told_at >= timedelta(seconds=update_seconds)


def escalation_due(incident: Incident, now: datetime, after_seconds: int) -> bool:
    """A held incident (outage) older than the limit, not escalated yet: escalate, once."""
    return (incident.holds and incident.state == "open" and incident.escalated_at is None
            and now - incident.first_seen >= timedelta(seconds=after_seconds))


def canary_due(incident: Incident, now: datetime) -> bool:
    """No canary running, and its backoff has passed."""
    return (incident.holds and incident.state == "open" and incident.canary_key is None
            and incident.next_canary_at is not None and now >= incident.next_canary_at)


def quiet(incident: Incident, now: datetime, window_seconds: int) -> bool:
    """An incident whose reruns were never held ends when no member joined for a window."""
    return (not incident.holds and incident.state == "open"
            and now - incident.last_seen > timedelta(seconds=window_seconds))
