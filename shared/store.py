"""Where decisions live: one Table Storage entity per decision, claimed before anything is done.

The claim is the idempotency guard. A webhook, the poller and a queue redelivery can all announce the same
failed run; only the one that inserts the entity first (or takes over a stale claim by ETag) goes on.
`DecisionStore` holds the shared logic; `TableDecisionStore` and `MemoryDecisionStore` implement a few hooks.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from shared.decision import DecisionRecord, utcnow
from shared.tables import EntityTable, MemoryEntityTable

log = logging.getLogger(__name__)

# A record in one of these states was not finished: its owner's retry (or anyone, once the lease is over)
# may resume it. "done" and "failed" are final.
IN_PROGRESS = frozenset({"claimed", "decided", "acted"})
# Fields kept as JSON strings in the entity (Table Storage has no nested types).
_JSON_FIELDS = ("failed_tasks", "evidence", "analysis", "resize", "notifications", "dropped_recipients")
# A string property may hold 64 KiB; keep every one well under it.
_MAX_PROPERTY_CHARS = 30_000


@dataclass(frozen=True)
class Claim:
    """The answer to "may I decide this run?"."""

    granted: bool
    reason: Literal["new", "retry_of_own_claim", "stale_claim_taken_over", "duplicate", "in_progress"]
    existing: DecisionRecord | None = None


def partition_and_row(key: str) -> tuple[str, str]:
    """Split an idempotency key 'workspace:run:repairs' into PartitionKey (workspace) and RowKey."""
    workspace, _, rest = key.partition(":")
    return workspace or "default", rest.replace(":", "-")


def to_entity(record: DecisionRecord) -> dict[str, Any]:
    """Flatten a record into a Table entity."""
    from shared.redaction import redact_data

    data = redact_data(record.model_dump(mode="json"))  # error texts may quote a token; the table never holds one
    entity: dict[str, Any] = {}
    for name, value in data.items():
        if name in _JSON_FIELDS:
            value = json.dumps(value, ensure_ascii=False)
        if isinstance(value, int) and not isinstance(value, bool) and not -(2**31) <= value < 2**31:
            value = str(value)  # Databricks ids are int64; the tables SDK refuses ints past 32 bits
        if isinstance(value, str) and len(value) > _MAX_PROPERTY_CHARS:
            value = value[:_MAX_PROPERTY_CHARS] + " …[truncated]"
        if value is not None:
            entity[name] = value
    pk, rk = partition_and_row(record.key)
    entity["PartitionKey"], entity["RowKey"] = pk, rk
    return entity


def from_entity(entity: dict[str, Any]) -> DecisionRecord:
    """Rebuild a record from a Table entity."""
    data = {k: v for k, v in entity.items() if k not in ("PartitionKey", "RowKey") and not k.startswith("odata")}
    for name in _JSON_FIELDS:
        if isinstance(data.get(name), str):
            try:
                data[name] = json.loads(data[name])
            except json.JSONDecodeError:
                data.pop(name)
    return DecisionRecord.model_validate(data)


class DecisionStore:
    """Claim, save and look up decisions, over an EntityTable (Azure) or a MemoryEntityTable (tests)."""

    def __init__(self, table: EntityTable | MemoryEntityTable, lease: timedelta = timedelta(minutes=10)) -> None:
        self._table = table
        self.lease = lease

    # --- public API ---------------------------------------------------------------------------------
    def claim(self, record: DecisionRecord, owner: str, now: datetime | None = None) -> Claim:
        """Insert `record` as claimed by `owner`, or say why not (already decided, or someone is on it)."""
        now = now or utcnow()
        record = record.model_copy(update={"status": "claimed", "claim_owner": owner, "claimed_at": now})
        if self._insert(to_entity(record)):
            return Claim(True, "new")
        existing, etag = self._read(record.key)
        if existing is None:  # deleted between insert and read; try once more
            return Claim(True, "new") if self._insert(to_entity(record)) else Claim(False, "in_progress")
        if existing.status not in IN_PROGRESS:
            return Claim(False, "duplicate", existing)
        own = existing.claim_owner == owner
        stale = as_utc(existing.claimed_at or existing.received_at) < now - self.lease
        if not (own or stale):
            return Claim(False, "in_progress", existing)
        taken = existing.model_copy(update={"claim_owner": owner, "claimed_at": now})
        if not self._replace(to_entity(taken), etag):
            return Claim(False, "in_progress", existing)
        return Claim(True, "retry_of_own_claim" if own else "stale_claim_taken_over", existing)

    def save(self, record: DecisionRecord) -> None:
        """Write the record (last writer wins; only the claim holder writes)."""
        self._upsert(to_entity(record))

    def get(self, key: str) -> DecisionRecord | None:
        record, _ = self._read(key)
        return record

    def chain(self, workspace_id: str, chain_id: str) -> list[DecisionRecord]:
        """Every decision of one chain of attempts, oldest attempt first."""
        records = self._query(workspace_id, {"chain_id": chain_id})
        return sorted(records, key=lambda r: (r.attempt, r.repair_count))

    def pending_outcomes(self) -> list[DecisionRecord]:
        """Decisions whose rerun the agent started and has not seen end yet."""
        return self._query(None, {"outcome": "pending"})

    def awaiting_verdicts(self) -> list[DecisionRecord]:
        """Decisions whose rerun failed, waiting for the decision on that failure (shared/learning/outcomes.py)."""
        return self._query(None, {"outcome_verdict": "awaiting"})

    def recent(self, since: datetime) -> list[DecisionRecord]:
        """Decisions received since `since` (reports, learning loop)."""
        return [r for r in self._query(None, {}) if r.received_at >= since]

    # --- the table -----------------------------------------------------------------------------------
    def _insert(self, entity: dict[str, Any]) -> bool:
        return self._table.insert(entity)

    def _read(self, key: str) -> tuple[DecisionRecord | None, Any]:
        entity, etag = self._table.read(*partition_and_row(key))
        return (from_entity(entity), etag) if entity is not None else (None, None)

    def _replace(self, entity: dict[str, Any], etag: Any) -> bool:
        return self._table.replace_if_unchanged(entity, etag)

    def _upsert(self, entity: dict[str, Any]) -> None:
        self._table.upsert(entity)

    def _query(self, partition: str | None, equals: dict[str, str]) -> list[DecisionRecord]:
        return [from_entity(e) for e, _ in self._table.query(partition, equals)]


class TableDecisionStore(DecisionStore):
    """Decisions in an Azure Table (Azurite locally). Storage errors become TransientError: the message retries."""

    def __init__(self, table_client: Any, lease: timedelta = timedelta(minutes=10)) -> None:
        super().__init__(EntityTable(table_client, "decision"), lease)


class MemoryDecisionStore(DecisionStore):
    """The same store in memory, for unit tests and dry runs."""

    def __init__(self, lease: timedelta = timedelta(minutes=10)) -> None:
        super().__init__(MemoryEntityTable(), lease)


def as_utc(value: datetime) -> datetime:
    """Table Storage returns timezone-aware datetimes; tests sometimes build naive ones."""
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
