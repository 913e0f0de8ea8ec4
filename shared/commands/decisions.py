"""`python -m shared decisions`: what the agent decided recently, as a table or JSON lines."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import timedelta

from shared.decision import DecisionRecord, utcnow

_SPAN = re.compile(r"^(\d+)([mhd])$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", default="24h", help="how far back: 30m, 24h, 7d (default 24h)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")


def run(args: argparse.Namespace) -> int:
    match = _SPAN.match(args.since)
    if not match:
        print(f"--since must look like 30m, 24h or 7d, not {args.since!r}", file=sys.stderr)
        return 2
    amount, unit = int(match.group(1)), match.group(2)
    since = utcnow() - timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: amount})

    from shared.settings import load_settings
    from shared.store import TableDecisionStore
    from shared.wiring import table

    settings = load_settings(require=("storage",))
    records = sorted(TableDecisionStore(table(settings, settings.decisions_table)).recent(since),
                     key=lambda r: r.received_at)
    if args.json:
        for record in records:
            print(record.model_dump_json())
    else:
        print(format_table(records))
    return 0


def format_table(records: list[DecisionRecord]) -> str:
    """A fixed-width table of decisions, one line each, for people."""
    rows = [("when (UTC)", "job", "run", "try", "category", "action", "outcome", "what was done")]
    for r in records:
        rows.append((
            r.received_at.strftime("%m-%d %H:%M:%S"), (r.job_name or str(r.job_id))[:28], str(r.run_id),
            f"{r.attempt}/{r.max_attempts}", r.category.value, r.action.value if r.action else "-", r.outcome,
            (r.done or r.error or r.status)[:90],
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths)) + "  " + row[-1] for row in rows]
    lines.insert(1, "-" * min(160, len(lines[0])))
    return "\n".join(lines) if records else lines[0] + "\n(no decisions in that window)"
