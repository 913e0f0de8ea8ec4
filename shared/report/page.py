"""The report as an HTML page (inline SVG charts, no script, no external resource) or as JSON."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.redaction import redact
from shared.report import charts
from shared.report.figures import Figures, Tally
from shared.report.recommend import Recommendation

TEMPLATES = Path(__file__).parent / "templates"


def to_json(fig: Figures, recs: list[Recommendation]) -> str:
    """The figures and recommendations as one JSON document (`report --json`)."""
    data: dict[str, Any] = fig.model_dump(mode="json")
    data["rates"] = {
        "feedback_accuracy": fig.feedback.rate, "outcome_accuracy": fig.outcomes.rate,
        "retry_success": fig.retries.success_rate, "resize_success": fig.resizes.success_rate,
    }
    data["recommendations"] = [r.model_dump(mode="json") for r in recs]
    return json.dumps(data, indent=2)


def to_html(fig: Figures, recs: list[Recommendation], *, generated: datetime) -> str:
    """The page: tiles, recommendations, charts and tables."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined,
                      autoescape=select_autoescape(enabled_extensions=("html.j2",), default=True))
    safe = fig.model_copy(update={"unmatched": [u.model_copy(update={"excerpt": redact(u.excerpt)})
                                                for u in fig.unmatched]})
    drawn = {
        "by_action": charts.bars(fig.by_action),
        "by_category": charts.bars(fig.by_category),
        "daily": charts.daily([(d.day.isoformat(), d.decisions, d.reruns_succeeded, d.reruns_failed)
                               for d in fig.days]),
        "cost": charts.bars({d.day.isoformat(): d.cost_usd for d in fig.days if d.cost_usd}, unit=" $"),
    }
    return env.get_template("report.html.j2").render(
        fig=safe, recs=recs, charts=drawn, pct=_pct, secs=_secs, tally=_tally,
        since=fig.since.strftime("%Y-%m-%d %H:%M"), until=fig.until.strftime("%Y-%m-%d %H:%M"),
        generated=generated.strftime("%Y-%m-%d %H:%M UTC"),
    )


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.0%}"


def _secs(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def _tally(tally: Tally | None) -> str:
    if tally is None or not tally.verified:
        return "—"
    return f"{tally.correct}/{tally.verified} ({tally.rate:.0%})"
