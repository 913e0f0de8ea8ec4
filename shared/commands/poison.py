"""`python -m shared poison list|requeue`: the failures that ended in the poison queue, and putting them back.

`list` shows each entry: when, which run, whether its cause was transient, how often it was queued again, why.
`requeue KEY ...` (or `--transient`) puts failures back on the job-failures queue; the claim makes one that was
decided meanwhile a duplicate, never a second action. The poller does the same by itself for transient ones.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from shared import poison
from shared.decision import utcnow
from shared.events import FailureEvent


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="list|requeue")
    listing = sub.add_parser("list", help="show the poison entries, oldest first")
    listing.add_argument("--json", action="store_true", help="one JSON object per line (reason and body whole)")
    again = sub.add_parser("requeue", help="put failures back on the job-failures queue")
    again.add_argument("keys", nargs="*", help="entry keys as `list` shows them")
    again.add_argument("--transient", action="store_true", help="every entry whose cause was transient")


def run(args: argparse.Namespace, *, state: Any = None, enqueue: Any = None, out: Any = None) -> int:
    """The command; state/enqueue/out are for tests (default: the configured Table Storage and queue)."""
    out = out or sys.stdout
    if state is None or (args.action == "requeue" and enqueue is None):
        state, enqueue = _storage(enqueue_needed=args.action == "requeue")
    found = poison.entries(state)
    if args.action == "list":
        for key, entry in found:
            print(json.dumps({"key": key, **entry}) if args.json else _line(key, entry), file=out)
        if not found and not args.json:
            print("(no poison entries)", file=out)
        return 0
    chosen = [(k, e) for k, e in found if k in set(args.keys) or (args.transient and e.get("transient")
                                                                  and e.get("status") == "poisoned")]
    unknown = set(args.keys) - {k for k, _ in found}
    for key in sorted(unknown):
        print(f"no poison entry {key!r}", file=sys.stderr)
    for key, entry in chosen:
        try:
            event = FailureEvent.from_message(entry.get("body") or "")
        except Exception as exc:  # noqa: BLE001 - a body that never parses cannot be queued again
            print(f"{key}: not queued, its message does not parse: {exc}", file=sys.stderr)
            continue
        poison.requeue(state, enqueue, key, entry, event, now=utcnow())
        print(f"{key}: queued again (run {event.run_id})", file=out)
    return 1 if unknown else 0


def _line(key: str, entry: dict[str, Any]) -> str:
    reason = str(entry.get("reason", "")).splitlines()[0][:120] if entry.get("reason") else ""
    kind = "transient" if entry.get("transient") else "permanent"
    return (f"{str(entry.get('at', ''))[:19]}  {key:<40}  {entry.get('status', ''):<9}  {kind:<9}  "
            f"requeued {entry.get('requeues', 0)}x  {reason}")


def _storage(*, enqueue_needed: bool) -> tuple[Any, Any]:
    from shared.settings import load_settings
    from shared.state import TableStateStore
    from shared.wiring import queue_client, table

    settings = load_settings()
    state = TableStateStore(table(settings, settings.state_table))
    if not enqueue_needed:
        return state, None
    queue = queue_client(settings)

    def enqueue(event: FailureEvent, delay_seconds: int) -> None:
        queue.send_message(event.to_message(), visibility_timeout=delay_seconds or None)

    return state, enqueue
