"""State documents are stored whole and always read back (Table Storage: 64 KiB a property, 1 MiB an entity)."""

from __future__ import annotations

import json

from shared.state import CHUNK_CHARS, MAX_DOCUMENT_CHARS, MemoryStateStore, StateStore
from shared.tables import MemoryEntityTable


class StrictTable(MemoryEntityTable):
    """Refuses what Azure Table Storage refuses: a string property over 32K UTF-16 code units."""

    def upsert(self, entity):
        for name, value in entity.items():
            assert not isinstance(value, str) or len(value.encode("utf-16-le")) <= 64 * 1024, f"{name} too long"
        super().upsert(entity)


def test_a_long_poison_reason_is_stored_whole_and_reads_back():
    state = StateStore(StrictTable())
    reason = "TransientError: " + "x" * 70_000 + " (after 5 attempts)"  # was cut at 30,000 chars of JSON: unreadable

    state.put("poison", "m1", {"reason": reason, "body": '{"run_id": 1}'})

    assert state.get("poison", "m1") == {"reason": reason, "body": '{"run_id": 1}'}


def test_non_ascii_text_counts_in_utf16_and_still_fits():
    state = StateStore(StrictTable())
    reason = "é€😀" * 10_000  # 30,000 characters, 40,000 UTF-16 units: over one property

    state.put("poison", "m2", {"reason": reason})

    assert state.get("poison", "m2")["reason"] == reason


def test_a_document_too_large_for_one_entity_is_shortened_inside_and_stays_valid_json():
    table = StrictTable()
    state = StateStore(table)
    document = {"reason": "r" * (MAX_DOCUMENT_CHARS + 50_000), "body": "b" * 1000, "dequeue_count": 5}

    state.put("poison", "m3", document)

    back = state.get("poison", "m3")
    assert back["body"] == "b" * 1000 and back["dequeue_count"] == 5
    assert back["reason"].endswith("…[truncated]") and len(json.dumps(back)) <= MAX_DOCUMENT_CHARS
    entity, _ = table.read("poison", "m3")
    assert sum(1 for name in entity if name.startswith("value")) <= MAX_DOCUMENT_CHARS // CHUNK_CHARS


def test_a_shorter_document_replaces_a_longer_one_without_leftover_chunks():
    state = MemoryStateStore()
    state.put("poison", "m4", {"reason": "x" * 100_000})

    state.put("poison", "m4", {"reason": "short"})

    assert state.get("poison", "m4") == {"reason": "short"}


def test_list_and_delete():
    state = MemoryStateStore()
    state.put("enqueued", "ws:1", {"end_time": 1})
    state.put("enqueued", "ws:2", {"end_time": 2})
    state.put("other", "ws:3", {})

    state.delete("enqueued", "ws:1")

    assert state.list("enqueued") == [("ws:2", {"end_time": 2})]
