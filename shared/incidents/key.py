"""The grouping key of a failure's cause: what makes failures of different jobs one incident.

(workspace, cluster termination reason) or (workspace, termination code) when the platform names the cause,
else (workspace, category, fingerprint). Which codes count is data (causes.toml).
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from shared.taxonomy import OUTSIDE_JOB, Category

TABLE = Path(__file__).with_name("causes.toml")


@dataclass(frozen=True)
class CauseRules:
    """causes.toml, checked."""

    cluster_reasons_ignored: frozenset[str]
    termination_codes: frozenset[str]
    categories_ignored: frozenset[Category]


@lru_cache(maxsize=1)
def rules(path: Path = TABLE) -> CauseRules:
    """The rules of causes.toml; ValueError names a bad entry."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    unknown = set(data) - {"cluster_reasons_ignored", "termination_codes", "categories_ignored"}
    if unknown:
        raise ValueError(f"{path.name}: unknown keys {sorted(unknown)}")
    try:
        ignored = frozenset(Category(c) for c in data.get("categories_ignored", []))
    except ValueError as exc:
        raise ValueError(f"{path.name}: categories_ignored: {exc}") from exc
    upper = lambda name: frozenset(str(c).upper() for c in data.get(name, []))  # noqa: E731
    return CauseRules(upper("cluster_reasons_ignored"), upper("termination_codes"), ignored)


def cause_key(workspace: str, category: Category, fingerprint: str, *, termination_code: str | None = None,
              cluster_reason: str | None = None) -> str | None:
    """'ws|reason|CODE', 'ws|code|CODE' or 'ws|fp|category|fingerprint'; None when the failure forms no incident."""
    table = rules()
    if category in table.categories_ignored:
        return None
    reason = (cluster_reason or "").upper()
    if reason and reason not in table.cluster_reasons_ignored:
        return f"{workspace}|reason|{reason}"
    code = (termination_code or "").upper()
    if code in table.termination_codes:
        return f"{workspace}|code|{code}"
    if fingerprint:
        return f"{workspace}|fp|{category.value}|{fingerprint}"
    return None


def describe(key: str) -> str:
    """The cause for people: 'cluster reason CLOUD_PROVIDER_RESOURCE_STOCKOUT', 'termination code ...', ..."""
    parts = key.split("|")
    if len(parts) >= 3 and parts[1] == "reason":
        return f"cluster termination reason {parts[2]}"
    if len(parts) >= 3 and parts[1] == "code":
        return f"termination code {parts[2]}"
    if len(parts) >= 4:
        return f"{parts[2]} failure with fingerprint {parts[3]}"
    return key


def holds_reruns(category: Category) -> bool:
    """Transient causes outside the job (categories.toml outside_job): reruns wait for a canary."""
    return category in OUTSIDE_JOB


def key_hash(key: str) -> str:
    """A short, table-safe digest of a cause key (the cause pointer's RowKey, the incident id's prefix)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]
