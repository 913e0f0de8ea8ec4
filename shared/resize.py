"""One step larger, never more: the cluster change behind RETRY_WITH_NEW_PARAMS.

Pure functions on a job cluster's `new_cluster` dict. Bounds come from settings (node-type ladders, maximum
workers, spark_conf keys that may change); the same bounds clamp anything an LLM suggests.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from shared.decision import FieldChange

# The fields a resize may touch, besides spark_conf keys: what its inverse patch is made of.
TRACKED_FIELDS = ("node_type_id", "driver_node_type_id", "num_workers", "autoscale.min_workers",
                  "autoscale.max_workers")


@dataclass(frozen=True)
class ResizeBounds:
    """What a resize may do."""

    ladders: list[list[str]]
    max_workers: int
    allowed_spark_conf: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class ResizePlan:
    """The new spec and a one-line summary, or why no step is possible."""

    after: dict[str, Any] | None
    summary: str

    @property
    def possible(self) -> bool:
        return self.after is not None


def next_node_type(node_type: str | None, ladders: list[list[str]]) -> str | None:
    """The next larger node type in the ladder `node_type` belongs to; None at the top or off-ladder."""
    if not node_type:
        return None
    for ladder in ladders:
        if node_type in ladder:
            i = ladder.index(node_type)
            return ladder[i + 1] if i + 1 < len(ladder) else None
    return None


def plan_resize(
    spec: dict[str, Any], bounds: ResizeBounds, spark_conf: dict[str, str] | None = None
) -> ResizePlan:
    """One step up: a larger node type when the ladder has one, else more workers; spark_conf only in bounds."""
    after = copy.deepcopy(spec)
    changes: list[str] = []

    pool = spec.get("instance_pool_id")  # node type comes from the pool: only the worker count can change
    node = spec.get("node_type_id")
    bigger = None if pool else next_node_type(node, bounds.ladders)
    if bigger:
        after["node_type_id"] = bigger
        changes.append(f"node {node} → {bigger}")
        driver = spec.get("driver_node_type_id")
        bigger_driver = next_node_type(driver, bounds.ladders) if driver else None
        if bigger_driver:
            after["driver_node_type_id"] = bigger_driver
            changes.append(f"driver {driver} → {bigger_driver}")
    else:
        change = _more_workers(after, bounds.max_workers)
        if change:
            changes.append(change)

    for key, value in (spark_conf or {}).items():
        if _holds_secret(key, spec.get("spark_conf", {}).get(key)):
            continue  # its old value could not be kept in the clear for the revert, so it is never changed
        if key in bounds.allowed_spark_conf and after.get("spark_conf", {}).get(key) != str(value):
            after.setdefault("spark_conf", {})[key] = str(value)
            changes.append(f"spark_conf {key}={value}")

    if not changes:
        where = f"node type {node}" + (" from an instance pool" if pool else "")
        return ResizePlan(None, f"already at the largest allowed size ({where}, max {bounds.max_workers} workers)")
    return ResizePlan(after, "; ".join(changes))


def _more_workers(spec: dict[str, Any], max_workers: int) -> str | None:
    """Double the workers (at least +1) up to max_workers, in place; None when already at the cap."""
    if "autoscale" in spec:
        scale = spec["autoscale"]
        current = int(scale.get("max_workers", 0))
        target = min(max_workers, max(current + 1, current * 2))
        if target <= current:
            return None
        scale["max_workers"] = target
        return f"autoscale max workers {current} → {target}"
    current = int(spec.get("num_workers", 0))
    if current == 0:
        return None  # single-node cluster: more workers would change its nature, not its size
    target = min(max_workers, max(current + 1, math.ceil(current * 2)))
    if target <= current:
        return None
    spec["num_workers"] = target
    return f"workers {current} → {target}"


def _holds_secret(key: str, value: Any) -> bool:
    from shared.redaction import is_sensitive_key, redact

    return is_sensitive_key(key) or (isinstance(value, str) and redact(value) != value)


# --- the inverse patch ----------------------------------------------------------------------------------
def field_changes(before: dict[str, Any], after: dict[str, Any]) -> list[FieldChange]:
    """Exactly the fields that differ between two specs, among those a resize may change."""
    paths = list(TRACKED_FIELDS)
    conf_keys = sorted(set(before.get("spark_conf") or {}) | set(after.get("spark_conf") or {}))
    paths += [f"spark_conf.{key}" for key in conf_keys]
    return [FieldChange(field=p, before=get_field(before, p), after=get_field(after, p))
            for p in paths if get_field(before, p) != get_field(after, p)]


def get_field(spec: dict[str, Any] | None, path: str) -> Any:
    """The value at `path` ('num_workers', 'autoscale.max_workers', 'spark_conf.<key with dots>'), or None."""
    top, _, rest = path.partition(".")
    value = (spec or {}).get(top)
    if not rest:
        return value
    return value.get(rest) if isinstance(value, dict) else None


def patched(spec: dict[str, Any], changes: list[FieldChange], side: Literal["before", "after"],
            only: set[str] | None = None) -> dict[str, Any]:
    """A copy of the live `spec` with the changed fields set to one side's values (None removes the field);
    every other field, secrets included, stays exactly as Databricks has it."""
    out = copy.deepcopy(spec)
    for change in changes:
        if only is not None and change.field not in only:
            continue
        value = change.before if side == "before" else change.after
        top, _, rest = change.field.partition(".")
        if not rest:
            if value is None:
                out.pop(top, None)
            else:
                out[top] = copy.deepcopy(value)
            continue
        inner = out.get(top) if isinstance(out.get(top), dict) else {}
        if value is None:
            inner.pop(rest, None)
        else:
            inner[rest] = copy.deepcopy(value)
        if inner:
            out[top] = inner
        else:
            out.pop(top, None)
    return out


def showing(spec: dict[str, Any] | None, changes: list[FieldChange], side: Literal["before", "after"]) -> set[str]:
    """The changed fields whose live value is that side's value."""
    return {c.field for c in changes if get_field(spec, c.field) == (c.before if side == "before" else c.after)}


def spec_hash(spec: dict[str, Any] | None) -> str:
    """A fingerprint of a whole spec, to tell later whether anything in it changed (never the spec itself)."""
    return hashlib.sha256(json.dumps(spec or {}, sort_keys=True, default=str).encode()).hexdigest()[:32]
