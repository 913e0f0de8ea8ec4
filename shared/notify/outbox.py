"""The outbox: every notification, its rendered email and its delivery state, in one Azure Table.

Partitions of the table (settings.outbox_table):
  notification  one row per notification (id: decision key or chain id + kind, or digest:<hour>:<recipient>);
                beside them, so that one transaction writes a notification with its marks, the repeat marks
                (~seen|<job|fingerprint|kind>: when that failure was last emailed) and the hourly slots
                (~rate|<hour>|<recipient>|<n>: one row per email a recipient got in that clock hour)
  digest        notifications a recipient did not get one by one (hourly cap, repeats), waiting for the digest
  rate, seen    the same counters as rows of their own (before the marks moved); only pruned now

`Outbox` holds the logic; `TableOutbox` and `MemoryOutbox` implement six small hooks (STYLE.md item 1).
Storage errors become TransientError in TableOutbox: the caller's message is retried, nothing is lost.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr

from shared.decision import utcnow
from shared.notify.outbox_body import (  # noqa: F401 - MAX_BODY_BYTES, TRUNCATION_NOTE: part of this module's API
    MAX_BODY_BYTES, MAX_STRING_CHARS, TRUNCATION_NOTE, _cut, _json_list, pack_body, unpack_body,
)
from shared.exceptions import TransientError
from shared.redaction import redact, redact_data
from shared.table_keys import table_key
from shared.tables import EntityTable, MemoryEntityTable, storage_errors

log = logging.getLogger(__name__)

NOTIFICATION, DIGEST, RATE, SEEN = "notification", "digest", "rate", "seen"
# Row-key prefixes of the marks kept in the notification partition ("~" sorts after every notification id).
SEEN_MARK, RATE_SLOT = "~seen|", "~rate|"

# folded: never sent, because its failure joined an incident whose notification says it (shared/incidents).
Status = Literal["pending", "sent", "recorded", "failed", "held", "disabled", "no_recipients", "folded"]
FINAL: frozenset[str] = frozenset({"sent", "recorded", "failed", "held", "disabled", "no_recipients", "folded"})



class OutboxEntry(BaseModel):
    """One notification: what was written, to whom, and what happened to it."""

    id: str
    kind: str  # a NotificationKind value, or "digest"
    channel: str | None = None  # teams / slack / pagerduty; None for an email. `text` then holds the message JSON
    status: Status = "pending"
    record_key: str | None = None
    chain_id: str | None = None
    job_id: int | None = None
    job_name: str | None = None
    run_id: int | None = None
    run_url: str | None = None
    category: str | None = None
    action: str | None = None
    fingerprint: str = ""
    headline: str = ""
    recipients: list[str] = Field(default_factory=list)
    recipient_source: str = ""
    held_recipients: list[str] = Field(default_factory=list)
    invalid_recipients: list[str] = Field(default_factory=list)
    subject: str = ""
    text: str = ""
    html: str = ""
    digest_items: list[str] = Field(default_factory=list, description="Notification ids a digest reports.")
    body_note: str = ""
    attempts: int = 0
    next_attempt_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    last_error: str | None = None
    transport: str | None = None
    provider_id: str | None = None
    detail: str | None = None

    _etag: Any = PrivateAttr(default=None)  # the version read; a save is conditional on it

    def to_entity(self) -> dict[str, Any]:
        """A Table entity: bodies compressed into one binary property, lists as JSON, long strings cut."""
        data = self.model_dump(mode="python", exclude={"text", "html", "digest_items"})
        body, note = pack_body(self.text, self.html, self.digest_items)
        entity: dict[str, Any] = {"PartitionKey": NOTIFICATION, "RowKey": safe_key(self.id), "body": body}
        for name, value in data.items():
            if isinstance(value, list):
                value = _json_list(value)
            elif isinstance(value, str):
                value = _cut(redact(value))  # the job's name and a send error may quote a secret, like any run text
            elif isinstance(value, int) and not isinstance(value, bool) and not -(2**31) <= value < 2**31:
                value = str(value)  # Databricks ids outgrow Edm.Int32; pydantic reads the string back as int
            if value is not None:
                entity[name] = value
        if note:
            entity["body_note"] = note
        return entity

    @classmethod
    def from_entity(cls, entity: dict[str, Any]) -> "OutboxEntry":
        data = {k: v for k, v in entity.items() if k not in ("PartitionKey", "RowKey", "body")}
        for name in ("recipients", "held_recipients", "invalid_recipients"):
            if isinstance(data.get(name), str):
                data[name] = json.loads(data[name])
        text, html, items = unpack_body(entity.get("body"))
        return cls.model_validate({**data, "text": text, "html": html, "digest_items": items})


# What a delivery attempt changes on an entry: re-applied onto a fresher copy when the save meets a conflict.
_DELIVERY_FIELDS = ("status", "sent_at", "next_attempt_at", "last_error", "transport", "provider_id", "detail",
                    "recipients", "held_recipients")


class HeldItem(BaseModel):
    """A notification one recipient will read in the digest of `hour` instead of on its own."""

    hour: str  # 2025-11-24T09 (UTC)
    recipient: str
    notification_id: str
    reason: Literal["cap", "repeat"]
    summary: dict[str, Any]  # what the digest shows: job, run, kind, action, category, headline, fingerprint

    def row_key(self) -> str:
        return safe_key(f"{self.hour}|{self.recipient.lower()}|{self.notification_id}")

    def to_entity(self) -> dict[str, Any]:
        return {
            "PartitionKey": DIGEST, "RowKey": self.row_key(), "hour": self.hour, "recipient": self.recipient,
            "notification_id": self.notification_id, "reason": self.reason,
            "summary": _cut(json.dumps(redact_data(self.summary), ensure_ascii=False, default=str)),
        }

    @classmethod
    def from_entity(cls, entity: dict[str, Any]) -> "HeldItem":
        return cls(
            hour=entity["hour"], recipient=entity["recipient"], notification_id=entity["notification_id"],
            reason=entity.get("reason", "cap"), summary=json.loads(entity.get("summary") or "{}"),
        )


class Outbox:
    """Notifications and the counters that keep them few, over an EntityTable (Azure) or a MemoryEntityTable."""

    def __init__(self, table: EntityTable | MemoryEntityTable) -> None:
        self._table = table
        self._slots_lock = threading.Lock()
        self._next_slots: dict[tuple[str, str], int] = {}

    # --- notifications ------------------------------------------------------------------------------
    def get(self, notification_id: str) -> OutboxEntry | None:
        entity, etag = self._read(NOTIFICATION, safe_key(notification_id))
        if not entity:
            return None
        entry = OutboxEntry.from_entity(entity)
        entry._etag = etag
        return entry

    def create(self, entry: OutboxEntry) -> bool:
        """Insert `entry`; False if a notification with its id exists (that is the idempotency guard)."""
        etag = self._insert(entry.to_entity())
        if etag:
            entry._etag = etag
        return bool(etag)

    def create_with_marks(self, entry: OutboxEntry, marks: list[dict[str, Any]]) -> bool:
        """Insert `entry` and its repeat mark and hourly slots (seen_mark, slot_mark) in one transaction; False,
        with nothing written, if any of them exists already (the caller then takes the slow path)."""
        if not marks:
            return self.create(entry)
        etags = self._table.insert_all([entry.to_entity(), *marks])
        if etags is None:
            return False
        entry._etag = etags[0]
        return True

    def save(self, entry: OutboxEntry) -> None:
        """Write `entry`, conditional on the version it was read at. On a conflict the delivery outcome is
        re-applied onto the stored entry (attempts never go down), unless that one is final already and this
        one is not: someone else finished it, and that is kept."""
        if entry._etag is None:
            entry._etag = self._upsert(entry.to_entity())
            return
        candidate = entry
        for _ in range(10):
            etag = self._replace(candidate.to_entity(), candidate._etag)
            if etag:
                entry._etag = etag
                return
            entity, fresh_etag = self._read(NOTIFICATION, safe_key(entry.id))
            if entity is None:
                entry._etag = self._upsert(entry.to_entity())
                return
            fresh = OutboxEntry.from_entity(entity)
            if fresh.status in FINAL and entry.status not in FINAL:
                log.info("notification finished by another worker; keeping that", extra={"notification": entry.id})
                return
            candidate = fresh.model_copy(update={
                **{name: getattr(entry, name) for name in _DELIVERY_FIELDS},
                "attempts": max(fresh.attempts, entry.attempts),
            })
            candidate._etag = fresh_etag
        raise TransientError(f"notification {entry.id} kept changing while being saved")

    def due(self, now: datetime) -> list[OutboxEntry]:
        """Pending notifications whose next attempt is due."""
        rows = self._query(NOTIFICATION, equals={"status": "pending"})
        entries = [OutboxEntry.from_entity(e) for e, _ in rows]
        return sorted(
            (e for e in entries if e.next_attempt_at is None or as_utc(e.next_attempt_at) <= now),
            key=lambda e: as_utc(e.created_at),
        )

    def claim(self, notification_id: str, now: datetime, until: datetime) -> OutboxEntry | None:
        """Take a due pending notification for sending (until `until`); None if another worker has it."""
        entity, etag = self._read(NOTIFICATION, safe_key(notification_id))
        if entity is None:
            return None
        entry = OutboxEntry.from_entity(entity)
        if entry.status != "pending" or (entry.next_attempt_at and as_utc(entry.next_attempt_at) > now):
            return None
        entry.next_attempt_at = until
        new_etag = self._replace(entry.to_entity(), etag)
        if not new_etag:
            return None
        entry._etag = new_etag
        return entry

    # --- the hourly cap -----------------------------------------------------------------------------
    def take_slot(self, recipient: str, hour: str, cap: int) -> bool:
        """Count one email to `recipient` in `hour`; False when the cap is reached (the digest takes it).

        Each email takes a slot row of its own (insert-if-absent, no read first); slot n taken means n + 1 emails
        went out, so once slot cap - 1 is taken the hour is full. This worker remembers the next free slot."""
        if cap <= 0:
            return True
        for _ in range(cap + 1):
            slot = self.next_slot(recipient, hour, cap)
            if slot is None:
                return False
            if self._insert(slot_mark(recipient, hour, slot)):
                return True
            self.slot_taken(recipient, hour, slot)
        return False

    def next_slot(self, recipient: str, hour: str, cap: int) -> int | None:
        """The slot this worker tries next for `recipient` in `hour` (reserved: a concurrent send in this worker
        tries the one after), or None when this worker knows the hour's slots are all taken."""
        key = (hour, recipient.lower())
        with self._slots_lock:
            slot = self._next_slots.get(key, 0)
            if slot >= cap:
                return None
            if len(self._next_slots) > 10_000:  # old hours: forget them
                self._next_slots = {k: v for k, v in self._next_slots.items() if k[0] >= hour}
            self._next_slots[key] = slot + 1
            return slot

    def slot_taken(self, recipient: str, hour: str, slot: int) -> None:
        """Slot `slot` was taken by someone else: try the next one next time."""
        key = (hour, recipient.lower())
        with self._slots_lock:
            self._next_slots[key] = max(self._next_slots.get(key, 0), slot + 1)

    def slot_unused(self, recipient: str, hour: str, slot: int) -> None:
        """A slot reserved by next_slot was not written after all: offer it again."""
        key = (hour, recipient.lower())
        with self._slots_lock:
            self._next_slots[key] = min(self._next_slots.get(key, 0), slot)

    # --- repeats ------------------------------------------------------------------------------------
    def seen_recently(self, key: str, now: datetime, window: timedelta, notification_id: str) -> bool:
        """True if `key` (job + fingerprint + kind) was emailed within `window`; otherwise mark it now.

        The mark is inserted first (no read): only when one exists is it read, and renewed if older than the
        window (conditionally: when another worker renewed it first, that one is the email)."""
        mark = seen_mark(key, now, notification_id)
        if self._insert(mark):
            return False
        entity, etag = self._read(NOTIFICATION, mark["RowKey"])
        if entity is None:
            return not self._insert(mark)
        if as_utc(entity["last_at"]) > now - window:
            return True
        return not self._replace(mark, etag)

    # --- digests ------------------------------------------------------------------------------------
    def hold(self, item: HeldItem) -> None:
        self._upsert(item.to_entity())

    def held_before(self, hour: str) -> list[HeldItem]:
        """Held items of every hour before `hour` (their digest is due)."""
        return [HeldItem.from_entity(e) for e, _ in self._query(DIGEST, row_key_below=hour)]

    def release(self, items: list[HeldItem]) -> None:
        for item in items:
            self._delete(DIGEST, item.row_key())

    # --- housekeeping -------------------------------------------------------------------------------
    def prune(self, now: datetime, repeat_window: timedelta) -> int:
        """Delete hourly counters older than an hour and repeat marks older than the window."""
        removed = 0
        last_hour = hour_key(now - timedelta(hours=1))
        for partition, below in ((RATE, last_hour), (NOTIFICATION, RATE_SLOT + last_hour)):
            start = RATE_SLOT if partition == NOTIFICATION else None
            for entity, _ in self._query(partition, row_key_below=below, row_key_from=start):
                self._delete(partition, entity["RowKey"])
                removed += 1
        for partition, start in ((SEEN, None), (NOTIFICATION, SEEN_MARK)):
            stop = None if start is None else start[:-1] + chr(ord(start[-1]) + 1)
            for entity, _ in self._query(partition, row_key_from=start, row_key_below=stop):
                if as_utc(entity["last_at"]) <= now - repeat_window:
                    self._delete(partition, entity["RowKey"])
                    removed += 1
        return removed

    # --- the table -----------------------------------------------------------------------------------
    def _insert(self, entity: dict[str, Any]) -> Any:
        return self._table.insert(entity)

    def _read(self, partition: str, row: str) -> tuple[dict[str, Any] | None, Any]:
        return self._table.read(partition, row)

    def _replace(self, entity: dict[str, Any], etag: Any) -> Any:
        return self._table.replace_if_unchanged(entity, etag)

    def _upsert(self, entity: dict[str, Any]) -> Any:
        return self._table.upsert(entity)

    def _delete(self, partition: str, row: str) -> None:
        self._table.delete(partition, row)

    def _query(
        self, partition: str, *, equals: dict[str, str] | None = None, row_key_below: str | None = None,
        row_key_from: str | None = None,
    ) -> list[tuple[dict[str, Any], Any]]:
        return self._table.query(partition, equals, row_key_below, row_key_from=row_key_from)


class TableOutbox(Outbox):
    """The outbox in an Azure Table (Azurite locally)."""

    def __init__(self, table_client: Any) -> None:
        super().__init__(EntityTable(table_client, "outbox row"))

    @classmethod
    def from_service(cls, table_service_client: Any, name: str) -> "TableOutbox":
        """The outbox table `name`, created if missing."""
        with storage_errors("create outbox table"):
            table = table_service_client.create_table_if_not_exists(name)
        return cls(table)


class MemoryOutbox(Outbox):
    """The same outbox in memory: unit tests and dry runs."""

    def __init__(self) -> None:
        super().__init__(MemoryEntityTable())


# --- helpers ----------------------------------------------------------------------------------------------
def seen_mark(key: str, now: datetime, notification_id: str) -> dict[str, Any]:
    """The repeat mark of `key` (job + fingerprint + kind), emailed `now` as `notification_id`."""
    return {"PartitionKey": NOTIFICATION, "RowKey": SEEN_MARK + safe_key(key), "last_at": now,
            "notification_id": _cut(notification_id)}


def slot_mark(recipient: str, hour: str, slot: int) -> dict[str, Any]:
    """The row that says `recipient` got email number `slot` + 1 in `hour` (sorts by hour, for pruning)."""
    return {"PartitionKey": NOTIFICATION, "RowKey": RATE_SLOT + safe_key(f"{hour}|{recipient.lower()}|{slot:05d}")}


def safe_key(key: str) -> str:
    """`key` as a table key: forbidden characters escaped, so recipients differing only there stay apart."""
    return table_key(key)


def hour_key(moment: datetime) -> str:
    """The UTC clock hour of `moment`: '2025-11-24T09' (sorts as time does)."""
    return f"{as_utc(moment).astimezone(timezone.utc):%Y-%m-%dT%H}"


def hour_start(hour: str) -> datetime:
    return datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=timezone.utc)


def as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
