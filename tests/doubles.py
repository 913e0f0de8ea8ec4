"""Small test doubles shared by several test modules."""

from __future__ import annotations

from datetime import datetime

from shared.state import StateStore
from shared.tables import MemoryEntityTable


class FixedClock:
    """A clock that says `now` until a test moves it (`clock.now += timedelta(...)`)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class _UnreachableTable(MemoryEntityTable):
    def read(self, partition, row):
        raise OSError("table unreachable")

    def upsert(self, entity):
        raise OSError("table unreachable")


def unreachable_state_store() -> StateStore:
    """A state store whose table cannot be read or written."""
    return StateStore(_UnreachableTable())
