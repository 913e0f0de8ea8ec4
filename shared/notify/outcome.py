"""What the outcome email says: how a rerun on a larger cluster ended and what became of the job cluster."""

from __future__ import annotations

from typing import Any

from shared.decision import DecisionRecord, ResizeChange
from shared.notify.text import one_line, redact, spec_text


def outcome_view(record: DecisionRecord) -> dict[str, Any]:
    """What the outcome email adds: how the rerun ended, on which size, and what became of the job cluster.

    The error excerpt is left out: the retry notice carried it, and this email is about how it ended.
    """
    resize = record.resize
    ok = record.outcome == "succeeded"
    before = cluster_size(resize.before) if resize else ""
    after = cluster_size(resize.after) if resize else ""
    name = f"'{spec_text(resize.job_cluster_key)}'" if resize else ""
    if ok:
        intro = (f"The rerun on the larger cluster succeeded: job cluster {name} worked at {after or 'its new size'}"
                 + (f" (its original size: {before})." if before else "."))
    else:
        intro = (f"The rerun on the larger cluster failed as well: {after or 'the new size'} was not enough, or the "
                 "job failed for another reason. The agent decides about this new failure as about any other "
                 "(another rerun while the budget lasts, else an escalation); you will hear about it separately.")
    state = cluster_state(record)
    return {
        "outcome": record.outcome,
        "succeeded": ok,
        "outcome_intro": intro,
        "size_before": before,
        "size_after": after,
        "cluster_state": state,
        "cluster_note": _cluster_note(state, ok, name, before),
        "preheader": one_line(intro, 140),
        "excerpt": "",
        "excerpt_note": "",
    }


def cluster_state(record: DecisionRecord) -> str:
    """What became of the resized job cluster once the rerun ended.

    'setting' (RESIZE_REVERT=false) and 'changed' (someone edited it since) are recorded by the timer. A rerun
    that failed again hands its resize to the chain's next decision ('next'), which may size it up again or put
    the original back; `reverted` on such a record can mean superseded, so it says nothing here.
    """
    resize = record.resize
    if resize is not None and resize.kept:
        return resize.kept
    if record.outcome != "succeeded":
        return "next"
    return "reverted" if resize is not None and resize.reverted else "kept"


def _cluster_note(state: str, ok: bool, name: str, before: str) -> str:
    """What became of job cluster `name` once the rerun ended, and what (if anything) a person should do."""
    if state == "reverted":
        original = f" ({before})" if before else ""
        note = (f"The agent reverted job cluster {name} to its original size{original}: a resize changes the job's "
                "future runs too.")
        if ok:
            note += (" The next scheduled run will use the old size and may fail the same way: make the change "
                     "permanent in the job's settings.")
        return note
    if state == "next":
        return (f"Job cluster {name} stays at its larger size until the agent's next decision on this chain: another "
                "step up while the budget lasts, or the original size back once it stops rerunning.")
    if state == "changed":
        note = (f"The agent left job cluster {name} as it is: someone changed it after the resize, so the original "
                "size was not put back.")
        return note + (" Check that its settings still give it at least the size that worked." if ok else "")
    why = " (RESIZE_REVERT is false)" if state == "setting" else ""
    if ok:
        return (f"Job cluster {name} keeps the larger size{why}: the job's next runs use it too, and cost more. "
                "Change it back in the job's settings when it is no longer needed.")
    return (f"Job cluster {name} keeps the larger size{why} although it did not help: change it back in the job's "
            "settings.")


def cluster_size(spec: dict[str, Any]) -> str:
    """'Standard_DS4_v2, 8 workers', 'instance pool p-1, autoscale 2–8 workers', 'Standard_DS3_v2, single node'."""
    node = spec_text(spec.get("node_type_id"))
    pool = spec_text(spec.get("instance_pool_id"))
    driver = spec_text(spec.get("driver_node_type_id"))
    parts = [node or (f"instance pool {pool}" if pool else "")]
    if driver and driver != node:
        parts.append(f"driver {driver}")
    parts.append(_workers(spec))
    return ", ".join(p for p in parts if p)


def worked_on(resize: ResizeChange | None) -> str:
    """'on Standard_DS4_v2' (a new node type), 'on 8 workers' (more workers), else 'with <what changed>'."""
    if resize is None:
        return ""
    node = spec_text(resize.after.get("node_type_id"))
    if node and node != spec_text(resize.before.get("node_type_id")):
        return f"on {node}"
    workers = _workers(resize.after)
    if workers and workers != _workers(resize.before):
        return f"on {workers}"
    return f"with {one_line(redact(resize.summary), 80)}"


def _workers(spec: dict[str, Any]) -> str:
    scale = spec.get("autoscale")
    if isinstance(scale, dict):
        low, high = spec_text(scale.get("min_workers")) or "?", spec_text(scale.get("max_workers")) or "?"
        return f"autoscale {low}–{high} workers"
    count = spec_text(spec.get("num_workers"))
    if not count:
        return ""
    if count == "0":
        return "single node"
    return "1 worker" if count == "1" else f"{count} workers"
