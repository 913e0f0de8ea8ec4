"""The `incidents` table: cause pointers, incidents and member rows, over an EntityTable (Azure) or its
in-memory twin. Every change to a pointer or an incident is conditional on its ETag; `change` retries a
read-modify-write until it lands, so concurrent members never lose each other's update.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.exceptions import TransientError
from shared.incidents.key import key_hash
from shared.incidents.model import CausePointer, Incident, Member, from_doc, to_doc
from shared.table_keys import table_key
from shared.tables import EntityTable, MemoryEntityTable

POINTER, INCIDENT = "cause", "incident"
_ATTEMPTS = 50  # 200 members racing on one incident row: each write is one round trip, conflicts are brief


class IncidentStore:
    """Read and write the incidents table."""

    def __init__(self, table: EntityTable | MemoryEntityTable) -> None:
        self._table = table

    def before_acting(self, record: Any, job: Any, deps: Any, owner: str) -> Any:
        """The pipeline's one call (completion.carry_on, before acting): join.before_acting with this store."""
        from shared.incidents.join import before_acting

        return before_acting(record, job, deps, owner)

    # --- cause pointers ---------------------------------------------------------------------------------
    def insert_pointer(self, pointer: CausePointer) -> bool:
        """Create the pointer of a cause nobody has yet (one operation); False if one exists."""
        etag = self._table.insert(_pointer_entity(pointer))
        if etag:
            pointer._etag = etag
        return bool(etag)

    def read_pointer(self, cause_key: str) -> CausePointer | None:
        entity, etag = self._table.read(POINTER, key_hash(cause_key))
        if entity is None:
            return None
        pointer = from_doc(CausePointer, _joined(entity))
        pointer._etag = etag
        return pointer

    def replace_pointer(self, pointer: CausePointer) -> bool:
        """Write `pointer` if nobody changed it since it was read; False otherwise."""
        etag = self._table.replace_if_unchanged(_pointer_entity(pointer), pointer._etag)
        if etag:
            pointer._etag = etag
        return bool(etag)

    # --- incidents --------------------------------------------------------------------------------------
    def get(self, incident_id: str) -> Incident | None:
        entity, etag = self._table.read(INCIDENT, table_key(incident_id))
        if entity is None:
            return None
        incident = from_doc(Incident, _joined(entity))
        incident._etag = etag
        return incident

    def create(self, incident: Incident) -> bool:
        """Insert the incident row; False if it exists (someone else opened it)."""
        etag = self._table.insert(_incident_entity(incident))
        if etag:
            incident._etag = etag
        return bool(etag)

    def change(self, incident_id: str, edit: Callable[[Incident], bool]) -> tuple[Incident | None, bool]:
        """Apply `edit` (returns False for "nothing to change") to the stored incident and write it, retrying
        on conflicts. (the incident as stored, whether this call's edit was written)."""
        for _ in range(_ATTEMPTS):
            current = self.get(incident_id)
            if current is None:
                return None, False
            etag = current._etag
            if not edit(current):
                return current, False
            written = self._table.replace_if_unchanged(_incident_entity(current), etag)
            if written:
                current._etag = written
                return current, True
        raise TransientError(f"incident {incident_id} kept changing while being written")

    def live(self) -> list[Incident]:
        """Incidents still open, and resolved ones whose held reruns are not all released yet."""
        rows = self._table.query(INCIDENT, {"active": True})
        out = []
        for entity, etag in rows:
            incident = from_doc(Incident, _joined(entity))
            incident._etag = etag
            out.append(incident)
        return out

    # --- members ----------------------------------------------------------------------------------------
    def add_member(self, member: Member) -> bool:
        """Insert the member row (exactly once per decision); False if it exists."""
        return bool(self._table.insert({"PartitionKey": table_key(member.incident_id), "RowKey": table_key(member.key),
                                        "held": member.held, "doc": to_doc(member)}))

    def members(self, incident_id: str, *, held: bool | None = None) -> list[Member]:
        equals = {} if held is None else {"held": held}
        return [from_doc(Member, e["doc"]) for e, _ in self._table.query(table_key(incident_id), equals)]


def _pointer_entity(pointer: CausePointer) -> dict[str, Any]:
    return {"PartitionKey": POINTER, "RowKey": key_hash(pointer.cause_key), **_chunked(to_doc(pointer))}


def _incident_entity(incident: Incident) -> dict[str, Any]:
    # `active` is what the timer queries: open, or resolved with reruns still to release.
    active = incident.state == "open" or (incident.holds and not incident.released_all)
    return {"PartitionKey": INCIDENT, "RowKey": table_key(incident.id), "state": incident.state, "active": active,
            **_chunked(to_doc(incident))}


class TableIncidentStore(IncidentStore):
    """Incidents in an Azure Table (Azurite locally)."""

    def __init__(self, table_client: Any) -> None:
        super().__init__(EntityTable(table_client, "incident"))


class MemoryIncidentStore(IncidentStore):
    """The same in memory, for unit tests and dry runs."""

    def __init__(self) -> None:
        super().__init__(MemoryEntityTable())


# A string property holds 32K UTF-16 characters; a large incident (many jobs and recipient lists) spans several.
_CHUNK = 30_000


def _chunked(text: str) -> dict[str, str]:
    parts = [text[i:i + _CHUNK] for i in range(0, len(text), _CHUNK)] or [""]
    return {("doc" if i == 0 else f"doc_{i}"): part for i, part in enumerate(parts)}


def _joined(entity: dict[str, Any]) -> str:
    parts, i = [entity.get("doc") or ""], 1
    while f"doc_{i}" in entity:
        parts.append(entity[f"doc_{i}"] or "")
        i += 1
    return "".join(parts)
