"""Turn a decision into an email people can act on: a subject that scans, an HTML and a plain-text body.

The templates (templates/*.html.j2, *.txt.j2) only lay out a view built beside this module, one module per
thing rendered: decision_view (one decision's email), outcome (how a rerun ended), digest, subject; text and
links make every run text fit for an email (redacted, bounded, links defanged). Jinja's autoescape escapes
the HTML templates: error texts contain <, & and whatever a user printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from shared.decision import DecisionRecord
from shared.notify.decision_view import CATEGORY_HINTS, decision_view
from shared.notify.digest import DIGEST_RUNS_PER_GROUP, digest_view
from shared.notify.kinds import NotificationKind
from shared.learning.links import link_base
from shared.notify.links import allowed_hosts, defang, defang_view, feedback_links
from shared.notify.outcome import cluster_size, cluster_state, outcome_view
from shared.notify.subject import budget_spent, headline, job_label, subject
from shared.notify.text import MAX_EXCERPT_CHARS, MAX_EXCERPT_LINES, MAX_HEADLINE, MAX_SUBJECT, one_line, when_label
from shared.settings import Settings

__all__ = [
    "CATEGORY_HINTS", "DIGEST_RUNS_PER_GROUP", "MAX_EXCERPT_CHARS", "MAX_EXCERPT_LINES", "MAX_HEADLINE", "MAX_SUBJECT",
    "RenderedEmail", "budget_spent", "cluster_size", "cluster_state", "decision_view", "digest_view", "feedback_links",
    "headline", "job_label", "one_line", "outcome_view", "render", "render_digest", "subject", "when_label",
]

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class RenderedEmail:
    """What a transport sends."""

    subject: str
    text: str
    html: str


# View keys whose values are vetted links (run pages from the Jobs API, the agent's feedback page).
LINK_KEYS = frozenset({"run_url", "url", "feedback", "recipient"})


def render(record: DecisionRecord, kind: NotificationKind, settings: Settings) -> RenderedEmail:
    """The email of `kind` about `record`."""
    allowed = link_hosts(settings)
    view = defang_view(decision_view(record, kind, settings), allowed, keep=LINK_KEYS)
    return RenderedEmail(
        subject=defang(subject(record, kind), allowed),
        text=_template(f"{kind.value}.txt.j2").render(v=view),
        html=_template(f"{kind.value}.html.j2").render(v=view),
    )


def link_hosts(settings: Settings) -> frozenset[str]:
    """Hosts an email may link to: the configured workspaces' and the feedback page's."""
    try:
        urls = [w.url for w in settings.workspaces()]
    except ValueError:  # DATABRICKS_WORKSPACES unreadable: reported by the settings check; link nothing
        urls = []
    return allowed_hosts([*urls, link_base(settings)])  # FEEDBACK_URL, else the app's own feedback page


def render_digest(
    recipient: str, items: list[dict[str, Any]], window_start: datetime, settings: Settings
) -> RenderedEmail:
    """One email for the notifications a recipient did not get one by one (the hourly cap, repeats)."""
    allowed = link_hosts(settings)
    view = defang_view(digest_view(recipient, items, window_start, settings), allowed, keep=LINK_KEYS)
    return RenderedEmail(
        subject=view["subject"],
        text=_template("digest.txt.j2").render(v=view),
        html=_template("digest.html.j2").render(v=view),
    )


@lru_cache(maxsize=1)
def _environment() -> Any:
    # Jinja2 is imported on first render, not when the package is imported (cold start).
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=True, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _template(name: str) -> Any:
    return _environment().get_template(name)
