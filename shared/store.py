"""Where decisions live: one Table Storage entity per decision, claimed before anything is done.

The claim is the idempotency guard. A webhook, the poller and a queue redelivery can all announce the same
failed run; only the one that inserts the entity first (or takes over a released or stale claim by ETag)
goes on. A claim belongs to one invocation (a fresh id each time, never the message id), so a second
invocation of the same message waits while the first is alive.

Every save of a record read from the table is conditional on the ETag it was read with. When someone else
wrote in between (the poller following the rerun while the worker notifies, say), the save re-reads the
record and re-applies only the fields this copy changed since it was read: nobody's change is overwritten.
`DecisionStore` holds the shared logic; `TableDecisionStore` and `MemoryDecisionStore` implement a few hooks.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from shared.decision import DecisionRecord, utcnow
from shared.exceptions import TransientError
from shared.tables import EntityTable, MemoryEntityTable

log = logging.getLogger(__name__)

# A record in one of these states was not finished: its owner's retry (or anyone, once the lease is over)
# may resume it. "done" and "failed" are final.
IN_PROGRESS = frozenset({"claimed", "decided", "acted"})
# Fields kept as JSON strings in the entity (Table Storage has no nested types).
_JSON_FIELDS = ("failed_tasks", "evidence", "analysis", "resize", "notifications", "intent", "dropped_recipients")
# Lists that two writers may both add to: merged as a union, not replaced.
_UNION_FIELDS = ("notifications",)
_MERGE_ATTEMPTS = 20
# A string property may hold 64 KiB; keep every one well under it.
_MAX_PROPERTY_CHARS = 30_000


class ClaimLost(TransientError):
    """Another invocation took this record over (our lease ran out): stop; the record is theirs now."""


@dataclass(frozen=True)
class Claim:
    """The answer to "may I decide this run?". `record` is the claimed row as stored (with its ETag)."""

    granted: bool
    reason: Literal["new", "retry_of_own_claim", "released_claim_taken", "stale_claim_taken_over", "duplicate",
                    "in_progress"]
    existing: DecisionRecord | None = None
    record: DecisionRecord | None = None

    @property
    def held_since(self) -> datetime | None:
        """When the holder's lease began (for an in_progress answer)."""
        return None if self.existing is None else _lease_start(self.existing)


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


def from_entity(entity: dict[str, Any], etag: Any = None) -> DecisionRecord:
    """Rebuild a record from a Table entity (with the ETag it was read at, for a conditional save)."""
    data = {k: v for k, v in entity.items() if k not in ("PartitionKey", "RowKey") and not k.startswith("odata")}
    for name in _JSON_FIELDS:
        if isinstance(data.get(name), str):
            try:
                data[name] = json.loads(data[name])
            except json.JSONDecodeError:
                data.pop(name)
    record = DecisionRecord.model_validate(data)
    _mark_read(record, etag)
    return record


def _mark_read(record: DecisionRecord, etag: Any) -> None:
    record._etag = etag
    record._read_as = record.model_dump(mode="json") if etag is not None else None


class DecisionStore:
    """Claim, save and look up decisions, over an EntityTable (Azure) or a MemoryEntityTable (tests)."""

    def __init__(self, table: EntityTable | MemoryEntityTable, lease: timedelta = timedelta(minutes=10)) -> None:
        self._table = table
        self.lease = lease

    # --- public API ---------------------------------------------------------------------------------
    def claim(self, record: DecisionRecord, owner: str, now: datetime | None = None, *,
              decided: bool = False) -> Claim:
        """Insert `record` as claimed by invocation `owner`, or take over a released or stale claim; else say why
        not (already decided, or another invocation holds a live claim). `decided`: the record already carries
        its decision and intent and is inserted as it is (claim and decision in one write); a takeover still
        hands back the stored record, whose own state decides what comes next."""
        now = now or utcnow()
        status = record.status if decided else "claimed"
        record = record.model_copy(update={"status": status, "claim_owner": owner, "claimed_at": now})
        etag = self._insert(to_entity(record))
        if etag:
            _mark_read(record, etag)
            return Claim(True, "new", record=record)
        existing, etag = self._read(record.key)
        if existing is None:  # deleted between insert and read; try once more
            etag = self._insert(to_entity(record))
            if etag:
                _mark_read(record, etag)
                return Claim(True, "new", record=record)
            return Claim(False, "in_progress")
        if existing.status not in IN_PROGRESS:
            return Claim(False, "duplicate", existing)
        own = existing.claim_owner == owner
        released = existing.claim_owner is None
        stale = _lease_start(existing) < now - self.lease
        if not (own or released or stale):
            return Claim(False, "in_progress", existing)
        taken = existing.model_copy(update={"claim_owner": owner, "claimed_at": now})
        new_etag = self._replace(to_entity(taken), etag)
        if not new_etag:
            return Claim(False, "in_progress", existing)
        _mark_read(taken, new_etag)
        reason = "retry_of_own_claim" if own else "released_claim_taken" if released else "stale_claim_taken_over"
        return Claim(True, reason, existing, record=taken)

    def release(self, key: str, owner: str) -> bool:
        """Give up `owner`'s claim on an unfinished record (its invocation failed): the next delivery may take
        it at once instead of waiting for the lease. False if the claim was not `owner`'s any more."""
        current, etag = self._read(key)
        if current is None or current.claim_owner != owner or current.status not in IN_PROGRESS:
            return False
        return bool(self._replace(to_entity(current.model_copy(update={"claim_owner": None})), etag))

    def save(self, record: DecisionRecord, *, owner: str | None = None) -> DecisionRecord:
        """Write the record; returns it as stored (the caller's copy is updated in place too).

        A record read from the table is written only if nobody wrote it since (ETag); otherwise the save
        re-reads it, re-applies the fields this copy changed since it was read, and tries again. With `owner`,
        the save also refuses (ClaimLost) once the record is claimed by another invocation. A record that was
        never read (built in memory) is written as is.
        """
        if record._etag is None:
            _mark_read(record, self._upsert(to_entity(record)))
            return record
        candidate = record
        for _ in range(_MERGE_ATTEMPTS):
            new_etag = self._replace(to_entity(candidate), candidate._etag)
            if new_etag:
                _mark_read(candidate, new_etag)
                if candidate is not record:
                    record.__dict__.update(candidate.__dict__)
                    _mark_read(record, new_etag)
                return record
            fresh, etag = self._read(record.key)
            if fresh is None:
                raise TransientError(f"decision {record.key} disappeared while being saved")
            if owner is not None and fresh.claim_owner != owner:
                raise ClaimLost(f"decision {record.key} was taken over by another invocation")
            candidate = _merge(fresh, record)
            log.info("decision changed since it was read; merged", extra={"key": record.key})
        raise TransientError(f"decision {record.key} kept changing while being saved")

    def get(self, key: str) -> DecisionRecord | None:
        record, _ = self._read(key)
        return record

    def chain(self, workspace_id: str, chain_id: str) -> list[DecisionRecord]:
        """Every decision of one chain of attempts, oldest attempt first."""
        records = self._query(workspace_id, {"chain_id": chain_id})
        return sorted(records, key=lambda r: (r.attempt, r.repair_count))

    def unfinished(self, workspace_id: str | None = None, run_id: int | None = None) -> list[DecisionRecord]:
        """Records not finished yet (claimed, decided or acted), of one run or of every run."""
        if run_id is not None:  # one query per message: every record of the run, few
            found = [r for r in self._query(workspace_id, {"run_id": _table_int(run_id)}) if r.status in IN_PROGRESS]
        else:
            found = [r for status in sorted(IN_PROGRESS) for r in self._query(workspace_id, {"status": status})]
        return sorted(found, key=lambda r: r.repair_count)

    def pending_outcomes(self) -> list[DecisionRecord]:
        """Decisions whose rerun the agent started and has not seen end yet."""
        return self._query(None, {"outcome": "pending"})

    def awaiting_verdicts(self) -> list[DecisionRecord]:
        """Decisions whose rerun failed, waiting for the decision on that failure (shared/learning/outcomes.py)."""
        return self._query(None, {"outcome_verdict": "awaiting"})

    def recent(self, since: datetime) -> list[DecisionRecord]:
        """Decisions received since `since` (reports, learning loop)."""
        return [r for r in self._query(None, {}) if r.received_at >= since]

    def take_over(self, key: str, owner: str, *, handed_to: str, now: datetime | None = None) -> Claim:
        """Claim an unfinished record for invocation `owner` when it was handed to `handed_to` (a hand-over
        token, shared/handover.py), released, or its lease is over; else say why not (one read, one write)."""
        now = now or utcnow()
        existing, etag = self._read(key)
        if existing is None:
            return Claim(False, "in_progress")
        if existing.status not in IN_PROGRESS:
            return Claim(False, "duplicate", existing)
        handed = existing.claim_owner == handed_to
        released = existing.claim_owner is None
        if not (handed or released or _lease_start(existing) < now - self.lease):
            return Claim(False, "in_progress", existing)
        taken = existing.model_copy(update={"claim_owner": owner, "claimed_at": now})
        new_etag = self._replace(to_entity(taken), etag)
        if not new_etag:  # another delivery of the same hand-over took it first
            return Claim(False, "in_progress", existing)
        _mark_read(taken, new_etag)
        reason = "retry_of_own_claim" if handed else "released_claim_taken" if released else "stale_claim_taken_over"
        return Claim(True, reason, existing, record=taken)

    # --- the table -----------------------------------------------------------------------------------
    def _insert(self, entity: dict[str, Any]) -> Any:
        return self._table.insert(entity)

    def _read(self, key: str) -> tuple[DecisionRecord | None, Any]:
        entity, etag = self._table.read(*partition_and_row(key))
        return (from_entity(entity, etag), etag) if entity is not None else (None, None)

    def _replace(self, entity: dict[str, Any], etag: Any) -> Any:
        return self._table.replace_if_unchanged(entity, etag)

    def _upsert(self, entity: dict[str, Any]) -> Any:
        return self._table.upsert(entity)

    def _query(self, partition: str | None, equals: dict[str, Any]) -> list[DecisionRecord]:
        return [from_entity(e, etag) for e, etag in self._table.query(partition, equals)]


class TableDecisionStore(DecisionStore):
    """Decisions in an Azure Table (Azurite locally). Storage errors become TransientError: the message retries."""

    def __init__(self, table_client: Any, lease: timedelta = timedelta(minutes=10)) -> None:
        super().__init__(EntityTable(table_client, "decision"), lease)


class MemoryDecisionStore(DecisionStore):
    """The same store in memory, for unit tests and dry runs."""

    def __init__(self, lease: timedelta = timedelta(minutes=10)) -> None:
        super().__init__(MemoryEntityTable(), lease)


def _merge(fresh: DecisionRecord, mine: DecisionRecord) -> DecisionRecord:
    """`fresh` with the fields `mine` changed since it was read applied on top (lists such as the
    notification ids as a union)."""
    now = mine.model_dump(mode="json")
    then = mine._read_as or {}
    update: dict[str, Any] = {}
    for name, value in now.items():
        if value == then.get(name):
            continue
        if name in _UNION_FIELDS:
            theirs = list(getattr(fresh, name))
            update[name] = theirs + [v for v in getattr(mine, name) if v not in theirs]
        else:
            update[name] = getattr(mine, name)
    merged = fresh.model_copy(update=update)
    merged._etag, merged._read_as = fresh._etag, fresh._read_as
    return merged


def _lease_start(record: DecisionRecord) -> datetime:
    return as_utc(record.claimed_at or record.received_at)


def _table_int(value: int) -> Any:
    return value if -(2**31) <= value < 2**31 else str(value)  # as to_entity stores it


def as_utc(value: datetime) -> datetime:
    """Table Storage returns timezone-aware datetimes; tests sometimes build naive ones."""
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
