"""One step larger, never more: the cluster change behind RETRY_WITH_NEW_PARAMS.

Pure functions on a job cluster's `new_cluster` dict. Bounds come from settings (node-type ladders, maximum
workers, spark_conf keys that may change); the same bounds clamp anything an LLM suggests.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any


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
