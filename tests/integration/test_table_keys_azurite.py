"""Keys with every character Azure Tables forbid, stored in real Azurite: accepted, and kept apart."""

from __future__ import annotations

from azure.data.tables import TableServiceClient

from shared.notify.outbox import TableOutbox
from shared.state import TableStateStore


def test_state_and_rate_keys_with_forbidden_characters(storage_connection_string, unique_name):
    service = TableServiceClient.from_connection_string(storage_connection_string)
    state = TableStateStore(service.create_table(unique_name))
    keys = ["m/1", "m#1", "m?1", "m\\1", "m\x011", "m\x7f1", "m\x851", "m-1"]
    for n, key in enumerate(keys):
        state.put("poison", key, {"n": n})
    assert [state.get("poison", key)["n"] for key in keys] == list(range(len(keys)))

    outbox = TableOutbox.from_service(service, unique_name + "o")
    for recipient in ("a/b@x.com", "a#b@x.com", "a?b@x.com"):
        assert outbox.take_slot(recipient, "2026-12-06T09", cap=1)  # each its own counter, not one shared
    assert not outbox.take_slot("a/b@x.com", "2026-12-06T09", cap=1)
