"""Hand an incident's notices to the notifier (its outbox sends and retries them, each id at most once)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from shared.exceptions import AgentError
from shared.incidents.model import Incident
from shared.incidents.notices import Kind, channel_message, notice_id, render_notice

if TYPE_CHECKING:
    from shared.pipeline import PipelineDeps

log = logging.getLogger(__name__)


def send_notices(incident: Incident, pending: list[tuple[str, str]], deps: PipelineDeps) -> list[str]:
    """Send each (kind, recipient list) notice the incident's last write recorded; the ids sent."""
    notify = getattr(deps.notifier, "notify_incident", None)
    if notify is None:  # a notifier without incidents (test doubles): nothing to send
        return []
    from shared.notify.render import link_hosts

    allowed = link_hosts(deps.settings)
    ids: list[str] = []
    for kind, key in pending:
        audience = incident.audiences[key]
        nid = audience.notices[-1] if kind == "update" else notice_id(incident.id, kind, key)  # type: ignore[arg-type]
        notice = render_notice(incident, kind, audience.to, nid, deps.settings, allowed)  # type: ignore[arg-type]
        # Channels hear once per incident and kind (not per recipient list, not for updates).
        message = channel_message(incident, kind, deps.settings) if kind != "update" else None  # type: ignore[arg-type]
        try:
            ids += notify(notice, message, f"incident:{incident.id}:{kind}")
        except AgentError as exc:  # the outbox unreachable: the timer's sweep sends what is missing
            log.error("incident notice %s not recorded: %s", nid, exc, extra={"incident_id": incident.id})
    return ids


def send_to_all(incident: Incident, kind: Kind, deps: PipelineDeps) -> list[str]:
    """One notice of `kind` to every recipient list of the incident (resolved, escalated), channels once."""
    if not incident.audiences:
        notify = getattr(deps.notifier, "notify_incident", None)
        if notify is None:
            return []
        from shared.incidents.notices import Notice

        # Nobody to email: the channels still hear it.
        empty = Notice(id=notice_id(incident.id, kind, "none"), kind=kind, incident_id=incident.id, to=(), subject="",
                       text="", html="", headline="")
        return notify(empty, channel_message(incident, kind, deps.settings), f"incident:{incident.id}:{kind}")
    return send_notices(incident, [(kind, key) for key in incident.audiences], deps)


def resend_missing(incident: Incident, deps: PipelineDeps) -> list[str]:
    """Notices the incident recorded but the outbox never got (the worker stopped in between): send them now."""
    outbox = getattr(deps.notifier, "outbox", None)
    if outbox is None:
        return []
    missing: list[tuple[str, str]] = []
    for key, audience in incident.audiences.items():
        for nid in audience.notices:
            if outbox.get(nid) is None:
                kind = nid.split(":")[2]
                if kind == "opened" or nid == audience.notices[-1]:
                    missing.append((kind, key))
    return send_notices(incident, missing, deps) if missing else []
