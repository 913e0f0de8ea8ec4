"""Small pieces of agent state in Table Storage: the poller's checkpoint, links from reruns to their chain,
and the reasons of messages that ended in the poison queue."""

from __future__ import annotations

import json
from typing import Any

from shared.table_keys import table_key
from shared.tables import EntityTable, MemoryEntityTable


class StateStore:
    """JSON documents by (kind, key), over an EntityTable (Azure) or a MemoryEntityTable (tests)."""

    def __init__(self, table: EntityTable | MemoryEntityTable) -> None:
        self._table = table

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """The document stored under (kind, key), or None."""
        entity, _ = self._table.read(kind, _safe_key(key))
        return json.loads(entity.get("value") or "{}") if entity is not None else None

    def put(self, kind: str, key: str, value: dict[str, Any]) -> None:
        """Store (replace) the document under (kind, key)."""
        self._table.upsert({"PartitionKey": kind, "RowKey": _safe_key(key),
                            "value": json.dumps(value, default=str)[:30_000]})


def _safe_key(key: str) -> str:
    # Table keys may not hold / \ # ?, control characters (C0, DEL, C1); keys differing there stay apart.
    return table_key(key)


class TableStateStore(StateStore):
    """State in an Azure Table."""

    def __init__(self, table_client: Any) -> None:
        super().__init__(EntityTable(table_client, "state"))


class MemoryStateStore(StateStore):
    """State in memory, for unit tests."""

    def __init__(self) -> None:
        super().__init__(MemoryEntityTable())
