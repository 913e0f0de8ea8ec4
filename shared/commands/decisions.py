"""`python -m shared decisions`: what the agent decided recently, as a table or JSON lines."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap

from shared.decision import DecisionRecord, utcnow


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", default="24h", help="how far back: 30m, 24h, 7d (default 24h)")
    parser.add_argument("--width", type=int, default=56, help="wrap 'what was done' at this width (default 56)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")


def run(args: argparse.Namespace) -> int:
    from shared.report.sources import parse_window

    try:
        since = utcnow() - parse_window(args.since)
    except ValueError as exc:
        print(f"--since: {exc}", file=sys.stderr)
        return 2

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
        print(format_table(records, width=args.width))
    return 0


# Column widths past which a cell wraps (at word boundaries); None: never wraps.
_WIDTHS = (None, 26, None, None, None, None, None, 56)
ATTEMPT_LEGEND = ("attempt N of M: the Nth try of the run's chain (its first run, Databricks' own retries and every "
                  "repair count), of at most M = 1 + MAX_RETRIES; a chain that fails its Mth try is escalated.")


def format_table(records: list[DecisionRecord], *, width: int = 56) -> str:
    """A text table of decisions for people, cells wrapped at word boundaries (tabulate), with the legend."""
    from tabulate import tabulate  # imported on use: only the table needs it

    headers = ("when (UTC)", "job", "run", "attempt", "category", "action", "outcome", "what was done")
    if not records:
        return "  ".join(headers) + "\n(no decisions in that window)"
    rows = [(
        r.received_at.strftime("%m-%d %H:%M:%S"), r.job_name or str(r.job_id), str(r.run_id),
        f"{r.attempt} of {r.max_attempts}", r.category.value, r.action.value if r.action else "-", r.outcome,
        r.done or r.error or r.status,
    ) for r in records]
    widths = [*_WIDTHS[:-1], width]
    table = tabulate(rows, headers=headers, tablefmt="simple", maxcolwidths=widths, disable_numparse=True)
    return table + "\n\n" + textwrap.fill(ATTEMPT_LEGEND, width=118)
