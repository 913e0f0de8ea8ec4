"""A failure too old to act on: recorded and reported, never rerun.

A replayed or forged webhook (or a poller catching up after a long outage) may announce a run that ended days
ago; a repair now would rerun it with parameters and data that no longer apply. The run's end time comes from
the Jobs API, not from the webhook body, so a sender cannot make an old run look fresh.
"""

from __future__ import annotations

from datetime import datetime, timezone

from shared.databricks.models import Run
from shared.decide import Verdict
from shared.taxonomy import Action

RERUNS = (Action.RETRY, Action.RETRY_WITH_NEW_PARAMS)


def run_age_hours(run: Run, now: datetime) -> float | None:
    """Hours since the run ended (its start when no end is given); None when Databricks gave neither."""
    ended_ms = run.end_time or run.start_time
    if not ended_ms:
        return None
    ended = datetime.fromtimestamp(ended_ms / 1000, tz=timezone.utc)
    now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
    return (now - ended).total_seconds() / 3600


def hold_stale(verdict: Verdict, run: Run, now: datetime, max_age_hours: float) -> Verdict:
    """`verdict`, except that a rerun of a run that ended more than `max_age_hours` ago becomes an email."""
    age = run_age_hours(run, now)
    if verdict.action not in RERUNS or age is None or age <= max_age_hours:
        return verdict
    return Verdict(Action.SEND_EMAIL, f"{verdict.reason}; but the run ended {_hours(age)} ago, more than "
                   f"FAILURE_MAX_AGE_HOURS ({max_age_hours:g} h): recorded and reported, nothing rerun")


def _hours(age: float) -> str:
    return f"{age / 24:.0f} days" if age >= 48 else f"{age:.1f} h"
