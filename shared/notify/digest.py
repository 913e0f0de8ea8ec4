"""The digest: the notifications a recipient did not get one by one, grouped by failure."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from shared.notify.links import safe_url
from shared.notify.text import MAX_HEADLINE, MAX_SUBJECT, one_line, redact
from shared.settings import Settings

DIGEST_RUNS_PER_GROUP = 15
ACCENT = "#374151"


def digest_view(
    recipient: str, items: list[dict[str, Any]], window_start: datetime, settings: Settings
) -> dict[str, Any]:
    """The digest's view: held notifications grouped by failure fingerprint, largest group first."""
    groups: dict[str, dict[str, Any]] = {}
    for item in sorted(items, key=lambda i: i.get("when") or ""):
        key = item.get("fingerprint") or item.get("id", "")
        group = groups.setdefault(key, {
            "headline": one_line(redact(item.get("headline") or ""), MAX_HEADLINE),
            "category": item.get("category") or "unknown",
            "runs": [],
            "jobs": set(),
        })
        group["jobs"].add(item.get("job") or "")
        group["runs"].append({
            "job": one_line(redact(item.get("job") or ""), 60),
            "run_id": item.get("run_id"),
            "url": safe_url(item.get("run_url")),
            "kind": item.get("kind") or "",
            "action": item.get("action") or "",
            "when": item.get("when_label") or "",
            "subject": one_line(redact(item.get("subject") or ""), MAX_SUBJECT),
        })
    ordered = sorted(groups.values(), key=lambda g: -len(g["runs"]))
    for group in ordered:
        group["count"] = len(group["runs"])
        group["job_count"] = len(group["jobs"] - {""})
        group["more"] = max(0, group["count"] - DIGEST_RUNS_PER_GROUP)
        group["runs"] = group["runs"][:DIGEST_RUNS_PER_GROUP]
        del group["jobs"]
    total = len(items)
    start = window_start.astimezone(timezone.utc)
    window = f"{start:%Y-%m-%d %H:%M}–{(start.hour + 1) % 24:02d}:00 UTC"
    kinds = "failure" if len(ordered) == 1 else "failures"
    return {
        "kind": "digest",
        "accent": ACCENT,
        "label": "Digest",
        "title": f"{total} notification{'s' if total != 1 else ''} held back between {window}",
        "preheader": f"{len(ordered)} distinct {kinds}; the largest: {ordered[0]['headline'] if ordered else ''}",
        "subject": one_line(
            f"[DIGEST] {total} job failure notice{'s' if total != 1 else ''} in the hour from "
            f"{start:%H:%M} UTC — {len(ordered)} distinct {kinds}",
            MAX_SUBJECT,
        ),
        "recipient": recipient,
        "window": window,
        "total": total,
        "groups": ordered,
        "cap": settings.email_max_per_recipient_per_hour,
        "repeat_minutes": settings.email_repeat_window_minutes,
    }
