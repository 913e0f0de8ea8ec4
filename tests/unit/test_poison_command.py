"""`python -m shared poison list|requeue` over a memory state store."""

from __future__ import annotations

import argparse
import io
import json
from datetime import datetime, timezone

from shared.commands import poison as command
from shared.events import FailureEvent
from shared.poison import record_poison
from shared.state import MemoryStateStore

AT = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)


def parse(*argv):
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return parser.parse_args(argv)


def store_with_entries():
    state = MemoryStateStore()
    record_poison(state, "m1", FailureEvent(run_id=41, job_id=1).model_dump_json(),
                  "TemporarilyUnavailable: Databricks 503 (after 5 attempts)\n" + "trace " * 20_000, 5,
                  transient=True, at=AT)
    record_poison(state, "m2", "not json at all", "ValidationError: bad body", 1, transient=False, at=AT)
    return state


def test_list_shows_every_entry_with_its_reason_whole_in_json():
    out = io.StringIO()

    assert command.run(parse("list", "--json"), state=store_with_entries(), out=out) == 0

    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {r["key"] for r in rows} == {"m1", "m2"}
    transient = next(r for r in rows if r["key"] == "m1")
    assert transient["transient"] is True and transient["reason"].endswith("trace ")  # not cut


def test_requeue_transient_puts_them_back_and_notes_it():
    state, queued, out = store_with_entries(), [], io.StringIO()

    code = command.run(parse("requeue", "--transient"), state=state, enqueue=lambda e, d: queued.append(e), out=out)

    assert code == 0 and [e.run_id for e in queued] == [41]
    assert state.get("poison", "m1")["status"] == "requeued"
    assert state.get("poison", "m1")["requeues"] == 1


def test_requeue_of_an_unparsable_body_or_unknown_key_queues_nothing():
    state, queued = store_with_entries(), []

    code = command.run(parse("requeue", "m2", "nope"), state=state,
                       enqueue=lambda e, d: queued.append(e), out=io.StringIO())

    assert code == 1 and queued == []


def test_a_token_quoted_in_the_reason_is_masked_in_the_entry_and_the_run_still_requeues():
    state, queued = MemoryStateStore(), []
    token = "dapi" + "0123456789abcdef" * 2
    record_poison(state, "m9", FailureEvent(run_id=49).model_dump_json(), f"Unauthenticated: bad token {token}", 5,
                  transient=True, at=AT)

    command.run(parse("requeue", "m9"), state=state, enqueue=lambda e, d: queued.append(e),
                out=io.StringIO())

    assert token not in json.dumps(state.get("poison", "m9"))
    assert [e.run_id for e in queued] == [49]
