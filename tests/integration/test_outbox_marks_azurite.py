"""The outbox's insert-if-absent marks on real Azurite: the notification with its repeat mark and hourly slot in one
transaction (all or nothing), the hourly cap held across workers that each remember their next slot, the
repeat window renewed once it is over, and old marks pruned."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from azure.data.tables import TableServiceClient

from shared.notify.outbox import NOTIFICATION, OutboxEntry, TableOutbox, seen_mark, slot_mark

T0 = datetime(2026, 12, 6, 9, 41, tzinfo=timezone.utc)
HOUR = "2026-12-06T09"


def _outbox(storage_connection_string: str, name: str) -> TableOutbox:
    return TableOutbox.from_service(TableServiceClient.from_connection_string(storage_connection_string), name)


def test_a_notification_and_its_marks_are_written_together_or_not_at_all(storage_connection_string, unique_name):
    outbox = _outbox(storage_connection_string, unique_name)
    first = OutboxEntry(id="ws:1:0:retry", kind="retry", recipients=["a@x.com"], text="t")
    assert outbox.create_with_marks(first, [seen_mark("job|fp|retry", T0, first.id), slot_mark("a@x.com", HOUR, 0)])
    assert first._etag and outbox.get(first.id).recipients == ["a@x.com"]

    # Another failure of the same job and fingerprint: its repeat mark exists, so its notification is not written.
    second = OutboxEntry(id="ws:2:0:retry", kind="retry", recipients=["a@x.com"], text="t")
    assert not outbox.create_with_marks(second, [seen_mark("job|fp|retry", T0, second.id),
                                                 slot_mark("a@x.com", HOUR, 1)])
    assert outbox.get(second.id) is None
    # ... nor its slot: the slot it tried is still free for the next email.
    assert outbox.take_slot("a@x.com", HOUR, cap=3)
    entity, _ = outbox._read(NOTIFICATION, slot_mark("a@x.com", HOUR, 1)["RowKey"])
    assert entity is not None


def test_the_hourly_cap_holds_across_workers_each_remembering_its_next_slot(storage_connection_string, unique_name):
    workers = [_outbox(storage_connection_string, unique_name) for _ in range(3)]  # three instances, one table
    granted = [w.take_slot("oncall@x.com", HOUR, cap=5) for _ in range(4) for w in workers]
    assert granted.count(True) == 5
    assert not any(w.take_slot("oncall@x.com", HOUR, cap=5) for w in workers)
    assert workers[0].take_slot("oncall@x.com", "2026-12-06T10", cap=5)  # a new hour, a new count


def test_the_repeat_window_is_one_insert_the_first_time_and_renewed_once_it_is_over(storage_connection_string,
                                                                                    unique_name):
    outbox = _outbox(storage_connection_string, unique_name)
    window = timedelta(minutes=60)
    assert not outbox.seen_recently("job|fp|retry", T0, window, "n1")
    assert outbox.seen_recently("job|fp|retry", T0 + timedelta(minutes=59), window, "n2")
    assert not outbox.seen_recently("job|fp|retry", T0 + timedelta(minutes=61), window, "n3")  # renewed
    assert outbox.seen_recently("job|fp|retry", T0 + timedelta(minutes=62), window, "n4")

    assert outbox.take_slot("a@x.com", HOUR, cap=3)
    removed = outbox.prune(T0 + timedelta(hours=5), window)
    assert removed == 2  # the old slot and the old repeat mark; the notifications stay
    assert outbox.due(T0 + timedelta(hours=5)) == []
