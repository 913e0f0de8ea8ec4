"""The poller's view of the queue (wiring's oldest_waiting) on the real Azurite queue."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from shared.events import FailureEvent
from shared.settings import Settings
from shared.wiring import build_deps


def test_oldest_waiting_is_when_the_front_message_was_enqueued_and_none_when_empty(storage_connection_string,
                                                                                   monkeypatch, unique_name):
    from shared import wiring

    real_queue_client, name = wiring.queue_client, f"q{unique_name}"[:60].lower().replace("_", "-")
    monkeypatch.setattr(wiring, "queue_client", lambda settings, *_: real_queue_client(settings, name))
    settings = Settings(storage_connection_string=storage_connection_string,
                        databricks_workspace_url="https://adb-1.azuredatabricks.net", databricks_pat_token="x")
    deps = build_deps(settings)

    assert deps.oldest_waiting() is None
    before = datetime.now(timezone.utc) - timedelta(seconds=5)
    deps.enqueue(FailureEvent(run_id=1), 0)
    deps.enqueue(FailureEvent(run_id=2), 0)

    oldest = deps.oldest_waiting()
    assert oldest is not None and before <= oldest <= datetime.now(timezone.utc) + timedelta(seconds=5)
