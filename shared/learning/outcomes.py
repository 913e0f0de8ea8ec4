"""Outcomes, read off the reruns the agent started: a success confirms the decision, the same fingerprint again
refutes it, a different failure says nothing about it (inconclusive); a resized rerun that succeeded records
the size that worked. Pure functions on the record: the poller saves it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.databricks.models import Run
from shared.decision import DecisionRecord

# A failed rerun whose own failure was never decided (lost webhook and poller, agent off) stops waiting.
GIVE_UP_AFTER = timedelta(days=3)


def rerun_succeeded(record: DecisionRecord, now: datetime) -> None:
    """The rerun of `record` succeeded: the decision is confirmed."""
    record.outcome_verdict, record.outcome_seen_at = "confirmed", now
    if record.resize is not None:
        record.worked_size = size_label(record.resize.after)
        record.outcome_note = f"the rerun succeeded on the larger cluster ({record.worked_size})"
    else:
        record.outcome_note = "the rerun succeeded"


def rerun_failed(record: DecisionRecord, failure_key: str, now: datetime) -> None:
    """The rerun failed; whether the same way is known once its own failure is decided (`judge`)."""
    record.outcome_verdict, record.outcome_seen_at, record.rerun_failure_key = "awaiting", now, failure_key
    record.outcome_note = f"the rerun failed; decision {failure_key} will say whether the same way"


def rerun_failure_key(record: DecisionRecord, rerun: Run) -> str:
    """The key of the decision on this rerun's failure. Not the run's current repair count: by the time the
    timer looks, the next decision may have repaired the run again."""
    if record.new_run_id is not None:
        return f"{record.workspace_id}:{rerun.run_id}:0"
    repairs = [item.id for item in rerun.repair_history if item.type == "REPAIR"]
    count = repairs.index(record.repair_id) + 1 if record.repair_id in repairs else record.repair_count + 1
    return f"{record.workspace_id}:{rerun.run_id}:{count}"


def judge(record: DecisionRecord, next_decision: DecisionRecord | None, now: datetime) -> bool:
    """Settle an awaiting verdict from the decision on the rerun's failure; False while that is not made yet."""
    if next_decision is None or not next_decision.fingerprint:
        seen = record.outcome_seen_at or now
        if now - _aware(seen, now) < GIVE_UP_AFTER:
            return False
        record.outcome_verdict = "inconclusive"
        record.outcome_note = "the rerun failed, and its failure was never decided"
        return True
    if next_decision.fingerprint == record.fingerprint:
        record.outcome_verdict = "refuted"
        record.outcome_note = f"the rerun failed again the same way (decision {next_decision.key})"
    else:
        record.outcome_verdict = "inconclusive"
        record.outcome_note = (f"the rerun failed differently ({next_decision.category.value}, decision "
                               f"{next_decision.key}), which neither confirms nor refutes this decision")
    return True


def size_label(spec: dict[str, Any]) -> str:
    """'Standard_DS4_v2 × 8 workers', 'Standard_DS3_v2 × autoscale 2–8' (short, for tables and reports)."""
    node = str(spec.get("node_type_id") or spec.get("instance_pool_id") or "?")[:60]
    scale = spec.get("autoscale")
    if isinstance(scale, dict):
        return f"{node} × autoscale {scale.get('min_workers', '?')}–{scale.get('max_workers', '?')}"
    workers = spec.get("num_workers")
    return f"{node} × {workers} workers" if workers is not None else node


def _aware(value: datetime, like: datetime) -> datetime:
    return value if value.tzinfo or not like.tzinfo else value.replace(tzinfo=like.tzinfo)
