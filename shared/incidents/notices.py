"""What an incident tells people: one email per recipient list when it opens, at most one update per interval,
one when it resolves, one if it escalates; and the same as a channel message (Teams, Slack, PagerDuty with
the incident id as dedup key). Rendered from templates/incident.*.j2; every text redacted and defanged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from shared.incidents.model import Incident
from shared.notify.channels.message import ChannelMessage
from shared.notify.links import defang
from shared.redaction import redact
from shared.settings import Settings

Kind = Literal["opened", "update", "resolved", "escalated"]
TEMPLATES = Path(__file__).resolve().parent / "templates"
# The channel kind each notice is routed as (NOTIFY_CHANNEL_ROUTES): an escalation pages, a resolve closes.
CHANNEL_KIND: dict[str, str] = {"opened": "incident", "update": "incident", "resolved": "resolved",
                                "escalated": "escalation"}


@dataclass(frozen=True)
class Notice:
    """One incident notification: an email to one recipient list (and, once per incident, a channel message)."""

    id: str
    kind: Kind
    incident_id: str
    to: tuple[str, ...]
    subject: str
    text: str
    html: str
    headline: str


def audience_key(to: list[str] | tuple[str, ...]) -> str:
    """A recipient list's short id: the same addresses in any order and case are one list."""
    joined = ",".join(sorted({a.strip().lower() for a in to}))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:12]


def notice_id(incident_id: str, kind: Kind, audience: str, number: int = 0) -> str:
    """Deterministic per (incident, kind, recipient list[, update number]): the outbox insert is the guard."""
    return f"incident:{incident_id}:{kind}:{audience}" + (f":{number}" if kind == "update" else "")


def render_notice(incident: Incident, kind: Kind, to: list[str] | tuple[str, ...], nid: str, settings: Settings,
                  allowed_hosts: frozenset[str] = frozenset()) -> Notice:
    """The email of `kind` about `incident` for one recipient list."""
    view = _view(incident, kind, settings, allowed_hosts)
    env = _environment()
    return Notice(id=nid, kind=kind, incident_id=incident.id, to=tuple(to), subject=view["title"][:250],
                  text=env.get_template("incident.txt.j2").render(v=view),
                  html=env.get_template("incident.html.j2").render(v=view), headline=view["diagnosis"][:300])


def channel_message(incident: Incident, kind: Kind, settings: Settings) -> ChannelMessage:
    """The channel message of `kind` (dedup key: the incident id; a resolve closes what the trigger opened)."""
    view = _view(incident, kind, settings, frozenset())
    jobs = ", ".join(j["label"] for j in view["jobs"][:10]) + (f" and {incident.job_count - 10} more"
                                                               if incident.job_count > 10 else "")
    return ChannelMessage(
        kind=CHANNEL_KIND[kind], event="resolve" if kind == "resolved" else "trigger",
        dedup_key=incident.id[:255], title=view["title"][:250],
        summary=f"{view['diagnosis']} — {view['what']}"[:1000],
        severity="info" if kind == "resolved" else "critical",
        facts=[("Cause", view["cause"][:300]), ("Category", incident.category.value),
               ("Jobs", f"{incident.job_count}: {jobs}"[:300]), ("Incident", incident.id)],
        run_url=incident.jobs[0].run_url if incident.jobs else None, component="incident",
        group=incident.workspace_id, category=incident.category.value,
    )


def _view(incident: Incident, kind: Kind, settings: Settings, allowed: frozenset[str]) -> dict[str, Any]:
    n = incident.job_count
    title = {
        "opened": f"Incident: {n} jobs failed with one cause",
        "update": f"Incident update: {n} jobs now share one cause",
        "resolved": f"Incident resolved: {n} jobs had one cause",
        "escalated": f"Incident escalated: an outage affecting {n} jobs has lasted "
                     f"{settings.incident_escalate_after_seconds // 60} minutes",
    }[kind]
    if kind == "resolved":
        what = incident.resolution or "Resolved."
    elif incident.holds:
        what = (f"Reruns are held while the cause lasts: one canary rerun probes it (first after "
                f"{settings.incident_canary_backoff_seconds} s, then backing off to "
                f"{settings.incident_canary_max_backoff_seconds} s); when it succeeds, the held reruns go out over "
                f"{settings.incident_release_spread_seconds} s.")
    else:
        what = "Each job needs the same fix; the agent reruns nothing for this cause."
    diagnosis = defang(redact(incident.diagnosis or "failed"), allowed)[:500]
    jobs = [{"label": defang(redact(j.job_label), allowed)[:200], "run_id": j.run_id, "url": j.run_url,
             "cause": _own_cause(j.cause_line, diagnosis, allowed)}
            for j in incident.jobs]
    return {
        "id": incident.id, "title": defang(redact(title), allowed), "cause": defang(redact(incident.cause), allowed),
        "category": incident.category.value, "diagnosis": diagnosis,
        "what": what, "jobs": jobs, "job_count": n, "more": max(0, n - len(jobs)),
        "first_seen": incident.first_seen.strftime("%Y-%m-%d %H:%M:%S UTC"),
    }


def _own_cause(line: str, diagnosis: str, allowed: frozenset[str]) -> str:
    """A member's own error line, shown beside its job when it says more than the shared diagnosis."""
    own = defang(redact(line), allowed).strip()
    return "" if not own or own == diagnosis or own == "failed" else own


@lru_cache(maxsize=1)
def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    return Environment(loader=FileSystemLoader(str(TEMPLATES)), undefined=StrictUndefined, trim_blocks=True,
                       lstrip_blocks=True, keep_trailing_newline=True,
                       autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False))
