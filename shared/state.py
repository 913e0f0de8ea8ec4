"""Small pieces of agent state in Table Storage: the poller's checkpoint and sweep, links from reruns to their
chain, runs the poller enqueued, and the reasons of messages that ended in the poison queue.

Documents are stored whole: a JSON text longer than one string property (64 KiB) is split over several
properties (`value`, `value_1`, ...) and joined on read. One too large even for that has its longest strings
shortened inside the document, so what is stored is always valid JSON that reads back.
"""

from __future__ import annotations

import json
from typing import Any

from shared.table_keys import table_key
from shared.tables import EntityTable, MemoryEntityTable

# A string property holds 64 KiB (32K UTF-16 characters); an entity 1 MiB. 30,000 characters a property and
# at most 15 of them keep one document well inside both.
CHUNK_CHARS = 30_000
MAX_CHUNKS = 15
MAX_DOCUMENT_CHARS = CHUNK_CHARS * MAX_CHUNKS
_TRUNCATED = " …[truncated]"


class StateStore:
    """JSON documents by (kind, key), over an EntityTable (Azure) or a MemoryEntityTable (tests)."""

    def __init__(self, table: EntityTable | MemoryEntityTable) -> None:
        self._table = table

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """The document stored under (kind, key), or None."""
        entity, _ = self._table.read(kind, _safe_key(key))
        return _document(entity) if entity is not None else None

    def put(self, kind: str, key: str, value: dict[str, Any]) -> None:
        """Store (replace) the document under (kind, key), whole."""
        self._table.upsert({"PartitionKey": kind, "RowKey": _safe_key(key), **_properties(value)})

    def list(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        """Every (key, document) of one kind (the poison list, for the poller and `poison list`)."""
        return [(entity["RowKey"], _document(entity)) for entity, _ in self._table.query(kind, {})]

    def delete(self, kind: str, key: str) -> None:
        """Forget the document under (kind, key)."""
        self._table.delete(kind, _safe_key(key))


def _properties(value: dict[str, Any]) -> dict[str, str]:
    # ASCII JSON: one character is one UTF-16 unit, so CHUNK_CHARS is exactly what a property holds.
    text = json.dumps(value, default=str)
    while len(text) > MAX_DOCUMENT_CHARS:
        shrunk = json.dumps(_shrink(json.loads(text), len(text) - MAX_DOCUMENT_CHARS))
        if len(shrunk) >= len(text):  # nothing long enough left to shorten: refuse rather than write junk
            raise ValueError(f"state document of {len(text)} characters cannot be made to fit")
        text = shrunk
    chunks = [text[i:i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)] or [""]
    return {("value" if i == 0 else f"value_{i}"): chunk for i, chunk in enumerate(chunks)}


def _document(entity: dict[str, Any]) -> dict[str, Any]:
    parts = [entity.get("value") or ""]
    i = 1
    while f"value_{i}" in entity:
        parts.append(entity[f"value_{i}"] or "")
        i += 1
    return json.loads("".join(parts) or "{}")


def _shrink(document: Any, excess: int) -> Any:
    """Shorten the longest strings of `document` until it is `excess` characters smaller (JSON stays valid)."""
    while excess > 0:
        path, longest = _longest_string(document, ())
        if longest is None or len(longest) <= 200:
            break
        keep = max(100, len(longest) - excess - len(_TRUNCATED) - 16)
        _set(document, path, longest[:keep] + _TRUNCATED)
        excess -= len(longest) - keep - len(_TRUNCATED)
    return document


def _longest_string(node: Any, path: tuple[Any, ...]) -> tuple[tuple[Any, ...], str | None]:
    best: tuple[tuple[Any, ...], str | None] = (path, node) if isinstance(node, str) else (path, None)
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        found = _longest_string(child, (*path, key))
        if found[1] is not None and (best[1] is None or len(found[1]) > len(best[1])):
            best = found
    return best


def _set(document: Any, path: tuple[Any, ...], value: str) -> None:
    for key in path[:-1]:
        document = document[key]
    document[path[-1]] = value


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
