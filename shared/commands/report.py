"""`python -m shared report`: what the agent decided over a window, how often it was right, and advice."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", default="7d", help="how far back: 30m, 24h, 7d (default 7d)")
    parser.add_argument("--json", action="store_true", help="the figures as JSON instead of a summary")
    parser.add_argument("--html", metavar="PATH", help="also write the report page (HTML) to PATH")


def run(args: argparse.Namespace) -> int:
    from shared.decision import utcnow
    from shared.report.sources import parse_window, report_from_storage
    from shared.settings import load_settings

    try:
        window = parse_window(args.since)
    except ValueError as exc:
        print(f"--since: {exc}", file=sys.stderr)
        return 2
    until = utcnow()
    report = report_from_storage(load_settings(), since=until - window, until=until)
    if args.html:
        Path(args.html).write_text(report.to_html(), encoding="utf-8")
    print(report.to_json() if args.json else summary(report))
    if args.html:
        print(f"report page: {Path(args.html).resolve()}", file=sys.stderr)
    return 0


def summary(report) -> str:  # noqa: ANN001 - shared.report.Report, imported lazily
    """The report in a few lines of text, for a terminal."""
    fig = report.figures

    def pct(rate: float | None) -> str:
        return "—" if rate is None else f"{rate:.0%}"

    lines = [
        f"{fig.decisions} decisions from {fig.since:%Y-%m-%d %H:%M} to {fig.until:%Y-%m-%d %H:%M} UTC",
        "  by action:   " + ", ".join(f"{k} {v}" for k, v in fig.by_action.items()),
        "  by category: " + ", ".join(f"{k} {v}" for k, v in fig.by_category.items()),
        f"  right by feedback {pct(fig.feedback.rate)} ({fig.feedback.correct}/{fig.feedback.verified}), "
        f"by outcome {pct(fig.outcomes.rate)} ({fig.outcomes.correct}/{fig.outcomes.verified})",
        f"  retries succeeded {pct(fig.retries.success_rate)}, resized reruns {pct(fig.resizes.success_rate)}; "
        f"{fig.emails} notifications",
        f"  LLM: {fig.llm.calls} calls, {fig.llm.cache_hits} cached, "
        f"{fig.llm.prompt_tokens + fig.llm.completion_tokens:,} tokens, ${fig.llm.cost_usd:.4f}",
        f"  time to action p50 {fig.time_to_action_p50 or 0:.1f} s, p95 {fig.time_to_action_p95 or 0:.1f} s",
        f"  {len(fig.unmatched)} fingerprints had no sure rule",
    ]
    lines += ["recommendations:"] + [f"  - {r.text}" for r in report.recommendations] if report.recommendations \
        else ["no recommendations"]
    return "\n".join(lines)
