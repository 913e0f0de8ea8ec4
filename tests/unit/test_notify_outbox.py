"""Outbox rows: compact, under Table Storage's property limit, and read back as written."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from shared.notify.outbox import (
    MAX_BODY_BYTES,
    TRUNCATION_NOTE,
    OutboxEntry,
    hour_key,
    pack_body,
    safe_key,
    unpack_body,
)

T0 = datetime(2025, 11, 24, 9, 41, tzinfo=timezone.utc)


def test_an_entry_survives_the_round_trip_through_an_entity():
    entry = OutboxEntry(id="ws:1:0:diagnosis", kind="diagnosis", recipients=["a@example.com"], subject="s",
                        text="plain <&>", html="<p>&lt;&amp;&gt;</p>", job_id=1023456789012345, run_id=5,
                        next_attempt_at=T0, digest_items=["x", "y"])
    back = OutboxEntry.from_entity(entry.to_entity())
    assert back == entry


def test_bodies_are_stored_compressed_in_one_property():
    html = "<tr><td>row</td></tr>" * 2_000
    entity = OutboxEntry(id="n", kind="retry", text="t" * 10_000, html=html).to_entity()
    assert isinstance(entity["body"], bytes) and len(entity["body"]) < 2_000
    assert "html" not in entity and "text" not in entity


def test_ids_too_large_for_int32_are_kept_exactly():
    entity = OutboxEntry(id="n", kind="retry", job_id=2**40 + 3).to_entity()
    assert OutboxEntry.from_entity(entity).job_id == 2**40 + 3


def test_a_body_too_large_even_compressed_is_cut_with_a_note():
    import os

    noise = os.urandom(100_000).hex()  # incompressible
    body, note = pack_body(noise, f"<pre>{noise}</pre>")
    assert len(body) <= MAX_BODY_BYTES
    assert note == TRUNCATION_NOTE
    text, html, _ = unpack_body(body)
    assert text.endswith(TRUNCATION_NOTE) and html.startswith("<pre")


def test_long_recipient_lists_stay_valid_json():
    entry = OutboxEntry(id="n", kind="retry", recipients=[f"user{i}@example.com" * 3 for i in range(2_000)])
    entity = entry.to_entity()
    assert len(entity["recipients"]) <= 8_000
    assert json.loads(entity["recipients"])


def test_row_keys_lose_the_characters_tables_forbid():
    key = safe_key("a/b\\c#d?e\x01f\x7fg\x85h")
    assert not any(ch in key for ch in "/\\#?") and all(ord(ch) >= 32 and not 127 <= ord(ch) <= 159 for ch in key)


def test_recipients_differing_only_in_forbidden_characters_get_different_keys():
    hour = "2025-11-24T09"
    keys = {safe_key(f"{hour}|{r}") for r in ("a/b@x.com", "a#b@x.com", "a?b@x.com", "a_b@x.com", "a~2Fb@x.com")}
    assert len(keys) == 5


def test_hour_keys_sort_as_time_does():
    assert hour_key(T0) == "2025-11-24T09"
    assert hour_key(T0) + "|x" < hour_key(T0.replace(hour=10))


def test_importing_the_notifier_does_not_import_acs_jinja_or_the_table_sdk():
    code = (
        "import sys, shared.notify, shared.notify.transports.acs, shared.notify.transports.smtp;"
        "print(sorted(m for m in sys.modules if m.startswith(('azure.communication', 'jinja2', 'azure.data'))))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root).stdout
    assert out.strip() == "[]"


def test_a_stale_copy_never_turns_a_sent_notification_back_to_pending():
    from shared.notify.outbox import MemoryOutbox

    outbox = MemoryOutbox()
    outbox.create(OutboxEntry(id="n1", kind="diagnosis", recipients=["a@example.com"], subject="s"))
    worker, timer = outbox.get("n1"), outbox.get("n1")
    timer.status, timer.attempts, timer.sent_at = "sent", 2, T0
    outbox.save(timer)
    worker.attempts = 1  # the worker's own attempt, counted before its send, saved after the timer's
    outbox.save(worker)

    back = outbox.get("n1")
    assert back.status == "sent" and back.attempts == 2


def test_two_attempts_saved_from_stale_copies_keep_the_higher_count():
    from shared.notify.outbox import MemoryOutbox

    outbox = MemoryOutbox()
    outbox.create(OutboxEntry(id="n1", kind="diagnosis", recipients=["a@example.com"], subject="s"))
    one, two = outbox.get("n1"), outbox.get("n1")
    one.attempts = 2
    outbox.save(one)
    two.attempts, two.last_error = 1, "smtp: timeout"
    outbox.save(two)

    back = outbox.get("n1")
    assert back.attempts == 2 and back.last_error == "smtp: timeout"
