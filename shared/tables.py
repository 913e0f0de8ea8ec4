"""The few Table Storage operations the agent builds on, with its error policy in one place.

Insert-if-absent, read with ETag, replace-if-unchanged, upsert, delete and filtered query. Expected outcomes
(exists, changed, missing) come back as values; any other storage error becomes TransientError, so the queue
message that needed the table is retried. The azure SDK is imported on first use (cold start).
"""

from __future__ import annotations

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

    def insert(self, entity: dict[str, Any]) -> bool:
        """Create the entity; False if one with its keys exists."""
        from azure.core.exceptions import ResourceExistsError

        try:
            with storage_errors(f"insert {self._label}"):
                self._table.create_entity(entity)
            return True
        except ResourceExistsError:
            return False

    def read(self, partition: str, row: str) -> tuple[dict[str, Any] | None, Any]:
        """The entity and its ETag, or (None, None)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            with storage_errors(f"read {self._label}"):
                entity = self._table.get_entity(partition, row)
        except ResourceNotFoundError:
            return None, None
        return dict(entity), entity.metadata.get("etag")

    def replace_if_unchanged(self, entity: dict[str, Any], etag: Any) -> bool:
        """Replace the entity if its ETag still matches; False if someone changed or deleted it."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        try:
            with storage_errors(f"update {self._label}"):
                self._table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                )
            return True
        except (ResourceModifiedError, ResourceNotFoundError):
            return False

    def upsert(self, entity: dict[str, Any]) -> None:
        """Create or replace the entity."""
        from azure.data.tables import UpdateMode

        with storage_errors(f"write {self._label}"):
            self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def delete(self, partition: str, row: str) -> None:
        """Delete the entity; a missing one is fine."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            with storage_errors(f"delete {self._label}"):
                self._table.delete_entity(partition, row)
        except ResourceNotFoundError:
            pass

    def query(self, filter_: str, params: dict[str, Any]) -> list[tuple[dict[str, Any], Any]]:
        """Entities matching the filter (every entity for an empty filter), each with its ETag."""
        with storage_errors(f"query {self._label}"):
            rows = list(self._table.query_entities(filter_, parameters=params) if filter_
                        else self._table.list_entities())
        return [(dict(e), e.metadata.get("etag")) for e in rows]
