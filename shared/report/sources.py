"""Where the report reads from in a deployment: the decision table and the feedback table (Table Storage)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from shared.report import Report, Verdict, build_report
from shared.settings import Settings


def report_from_storage(settings: Settings, *, since: datetime, until: datetime) -> Report:
    """Build the report over the deployment's tables."""
    from shared.store import TableDecisionStore
    from shared.wiring import table

    store = TableDecisionStore(table(settings, settings.decisions_table))
    return build_report(store.recent, feedback_reader(settings), since=since, until=until,
                        unsure_below=settings.llm_confidence_threshold, max_retries=settings.max_retries)


def feedback_reader(settings: Settings) -> Callable[[datetime], Iterable[Verdict]]:
    """People's verdicts given since a moment, from the feedback table (shared.learning)."""
    def read(since: datetime) -> Iterable[Verdict]:
        from shared.learning.feedback import TableFeedbackStore
        from shared.wiring import table

        return verdicts(TableFeedbackStore(table(settings, settings.feedback_table)).all(), since)

    return read


def verdicts(feedback: Iterable[Any], since: datetime) -> list[Verdict]:
    """The learning loop's Feedback rows as the report's Verdicts (answers given since `since`)."""
    return [Verdict(decision_key=f.decision_key, correct=f.correct, person=f.by,
                    category=f.category.value if f.category is not None else None,
                    action=f.action.value if f.action is not None else None)
            for f in feedback if f.at >= since]


def parse_window(text: str) -> timedelta:
    """'30m', '24h', '7d' → a timedelta; ValueError naming the expected shape otherwise."""
    units = {"m": "minutes", "h": "hours", "d": "days"}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit() or int(number) <= 0:
        raise ValueError(f"a window looks like 30m, 24h or 7d, not {text!r}")
    return timedelta(**{units[unit]: int(number)})


MAX_WINDOW = timedelta(days=90)
# The page runs no script and loads nothing: a report opened from a link cannot be made to do anything else.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


def page_request(query: dict[str, str], *, now: datetime,
                 build: Callable[[datetime, datetime], Report]) -> tuple[int, str, str]:
    """(status, body, content type) for GET /api/report?since=7d[&format=json]."""
    try:
        window = parse_window(query.get("since") or "7d")
    except ValueError as exc:
        return 400, f"since: {exc}", "text/plain"
    if window > MAX_WINDOW:
        return 400, "since: at most 90d", "text/plain"
    fmt = query.get("format") or "html"
    if fmt not in ("html", "json"):
        return 400, "format: html or json", "text/plain"
    report = build(now - window, now)
    return (200, report.to_json(), "application/json") if fmt == "json" else (200, report.to_html(), "text/html")
