"""Small pieces of agent state in Table Storage: the poller's checkpoint, links from reruns to their chain,
and the reasons of messages that ended in the poison queue."""

from __future__ import annotations

import json
import threading
from typing import Any

from shared.tables import EntityTable


class StateStore:
    """JSON documents by (kind, key). Subclasses implement `_get` and `_put`."""

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """The document stored under (kind, key), or None."""
        return self._get(kind, _safe_key(key))

    def put(self, kind: str, key: str, value: dict[str, Any]) -> None:
        """Store (replace) the document under (kind, key)."""
        self._put(kind, _safe_key(key), value)

    def _get(self, kind: str, key: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def _put(self, kind: str, key: str, value: dict[str, Any]) -> None:
        raise NotImplementedError


def _safe_key(key: str) -> str:
    # Table keys may not hold / \ # ? or control characters.
    return "".join("-" if ch in "/\\#?" or ord(ch) < 32 else ch for ch in key)[:512]


class TableStateStore(StateStore):
    """State in an Azure Table."""

    def __init__(self, table_client: Any) -> None:
        self._table = EntityTable(table_client, "state")

    def _get(self, kind: str, key: str) -> dict[str, Any] | None:
        entity, _ = self._table.read(kind, key)
        return json.loads(entity.get("value") or "{}") if entity is not None else None

    def _put(self, kind: str, key: str, value: dict[str, Any]) -> None:
        self._table.upsert({"PartitionKey": kind, "RowKey": key, "value": json.dumps(value, default=str)[:30_000]})


class MemoryStateStore(StateStore):
    """State in memory, for unit tests."""

    def __init__(self) -> None:
        self._docs: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def _get(self, kind: str, key: str) -> dict[str, Any] | None:
        raw = self._docs.get((kind, key))
        return json.loads(raw) if raw is not None else None

    def _put(self, kind: str, key: str, value: dict[str, Any]) -> None:
        with self._lock:
            self._docs[(kind, key)] = json.dumps(value, default=str)
