"""The few Table Storage operations the agent builds on, with its error policy in one place.

`EntityTable` wraps an Azure TableClient; `MemoryEntityTable` does the same on a dict, so every store is
written once and runs on either.

Insert-if-absent, read with ETag, replace-if-unchanged, upsert, delete and filtered query. Expected outcomes
(exists, changed, missing) come back as values; any other storage error becomes TransientError, so the queue
message that needed the table is retried. The azure SDK is imported on first use (cold start).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Iterator

from shared.exceptions import TransientError


@contextmanager
def storage_errors(what: str) -> Iterator[None]:
    """Turn unexpected Azure storage errors into TransientError; let the expected ones through."""
    from azure.core.exceptions import AzureError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

    try:
        yield
    except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
        raise
    except AzureError as exc:
        raise TransientError(f"table storage unavailable ({what}): {type(exc).__name__}") from exc


def equality_filter(partition: str | None, equals: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """An OData filter (with parameters) for PartitionKey and simple equalities."""
    clauses, params = [], {}
    if partition is not None:
        clauses.append("PartitionKey eq @pk")
        params["pk"] = partition
    for i, (name, value) in enumerate(equals.items()):
        clauses.append(f"{name} eq @v{i}")
        params[f"v{i}"] = value
    return " and ".join(clauses), params


class EntityTable:
    """One Azure table (a TableClient), seen through the operations above."""

    def __init__(self, table_client: Any, label: str) -> None:
        self._table = table_client
        self._label = label

    def insert(self, entity: dict[str, Any]) -> Any:
        """Create the entity and return its ETag (truthy); False if one with its keys exists."""
        from azure.core.exceptions import ResourceExistsError

        try:
            with storage_errors(f"insert {self._label}"):
                answer = self._table.create_entity(entity)
            return _etag_of(answer)
        except ResourceExistsError:
            return False

    def insert_all(self, entities: list[dict[str, Any]]) -> list[Any] | None:
        """Create every entity (one partition) in one transaction and return their ETags; None, with nothing
        created, if any of them exists (or the transaction failed otherwise with a 4xx the caller can avoid)."""
        from azure.data.tables import TableTransactionError

        with storage_errors(f"insert {self._label}s"):
            try:
                answers = self._table.submit_transaction([("create", e) for e in entities])
            except TableTransactionError as exc:
                if exc.status_code == 409:  # one of them exists (EntityAlreadyExists): nothing was written
                    return None
                raise
        return [_etag_of(a) for a in answers]

    def read(self, partition: str, row: str) -> tuple[dict[str, Any] | None, Any]:
        """The entity and its ETag, or (None, None)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            with storage_errors(f"read {self._label}"):
                entity = self._table.get_entity(partition, row)
        except ResourceNotFoundError:
            return None, None
        return dict(entity), entity.metadata.get("etag")

    def replace_if_unchanged(self, entity: dict[str, Any], etag: Any) -> Any:
        """Replace the entity if its ETag still matches and return the new ETag; False if someone changed or
        deleted it."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        try:
            with storage_errors(f"update {self._label}"):
                answer = self._table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                )
            return _etag_of(answer)
        except (ResourceModifiedError, ResourceNotFoundError):
            return False

    def upsert(self, entity: dict[str, Any]) -> Any:
        """Create or replace the entity; its new ETag."""
        from azure.data.tables import UpdateMode

        with storage_errors(f"write {self._label}"):
            return _etag_of(self._table.upsert_entity(entity, mode=UpdateMode.REPLACE))

    def delete(self, partition: str, row: str) -> None:
        """Delete the entity; a missing one is fine."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            with storage_errors(f"delete {self._label}"):
                self._table.delete_entity(partition, row)
        except ResourceNotFoundError:
            pass

    def query(
        self, partition: str | None = None, equals: dict[str, Any] | None = None, row_key_below: str | None = None,
        *, row_key_from: str | None = None,
    ) -> list[tuple[dict[str, Any], Any]]:
        """Entities of `partition` (None: every partition) whose properties equal `equals` (and whose RowKey is
        in [row_key_from, row_key_below)), with their ETags."""
        filter_, params = equality_filter(partition, equals or {})
        if row_key_from is not None:
            filter_ = " and ".join(p for p in (filter_, "RowKey ge @from") if p)
            params["from"] = row_key_from
        if row_key_below is not None:
            filter_ = " and ".join(p for p in (filter_, "RowKey lt @below") if p)
            params["below"] = row_key_below
        with storage_errors(f"query {self._label}"):
            rows = list(self._table.query_entities(filter_, parameters=params) if filter_
                        else self._table.list_entities())
        return [(dict(e), e.metadata.get("etag")) for e in rows]


def _etag_of(answer: Any) -> Any:
    # The SDK answers writes with the response metadata; an older one without it still means "written".
    etag = answer.get("etag") if isinstance(answer, dict) else None
    return etag or True


class MemoryEntityTable:
    """The same operations on a dict, for unit tests and dry runs; ETags are version numbers."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], tuple[dict[str, Any], int]] = {}
        self._lock = threading.Lock()

    def insert(self, entity: dict[str, Any]) -> bool:
        with self._lock:
            key = (entity["PartitionKey"], entity["RowKey"])
            if key in self._rows:
                return False
            self._rows[key] = (dict(entity), 1)
            return 1

    def insert_all(self, entities: list[dict[str, Any]]) -> list[Any] | None:
        with self._lock:
            keys = [(e["PartitionKey"], e["RowKey"]) for e in entities]
            if len(set(keys)) != len(keys) or any(k in self._rows for k in keys):
                return None
            for key, entity in zip(keys, entities):
                self._rows[key] = (dict(entity), 1)
            return [1] * len(entities)

    def read(self, partition: str, row: str) -> tuple[dict[str, Any] | None, Any]:
        with self._lock:
            found = self._rows.get((partition, row))
        return (dict(found[0]), found[1]) if found else (None, None)

    def replace_if_unchanged(self, entity: dict[str, Any], etag: Any) -> Any:
        with self._lock:
            key = (entity["PartitionKey"], entity["RowKey"])
            if key not in self._rows or self._rows[key][1] != etag:
                return False
            self._rows[key] = (dict(entity), etag + 1)
            return etag + 1

    def upsert(self, entity: dict[str, Any]) -> Any:
        with self._lock:
            key = (entity["PartitionKey"], entity["RowKey"])
            version = self._rows[key][1] + 1 if key in self._rows else 1
            self._rows[key] = (dict(entity), version)
            return version

    def delete(self, partition: str, row: str) -> None:
        with self._lock:
            self._rows.pop((partition, row), None)

    def query(
        self, partition: str | None = None, equals: dict[str, Any] | None = None, row_key_below: str | None = None,
        *, row_key_from: str | None = None,
    ) -> list[tuple[dict[str, Any], Any]]:
        out = []
        with self._lock:
            rows = sorted(self._rows.items())
        for (pk, rk), (entity, etag) in rows:
            if partition is not None and pk != partition or row_key_below is not None and not rk < row_key_below:
                continue
            if row_key_from is not None and not rk >= row_key_from:
                continue
            if all(entity.get(n) == v for n, v in (equals or {}).items()):
                out.append((dict(entity), etag))
        return out
