"""Run text made fit for an email: redacted, on one line or bounded, with a note of what was left out.

Every text that came from a run (error, excerpt, evidence, LLM output, job settings) is redacted here; the
finished view then goes through shared.notify.links, which defangs every link not to an allowed host.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from shared.redaction import redact  # every run text passes through it: no secret in an email

MAX_SUBJECT = 160
MAX_HEADLINE = 90
MAX_EXCERPT_CHARS = 2_500
MAX_EXCERPT_LINES = 30
MAX_EVIDENCE_LINES = 6
MAX_LINE = 300
MAX_PROSE = 2_000  # root cause, suggested fix, reason
MAX_TASKS = 10


def one_line(text: str, limit: int) -> str:
    """Whitespace (line breaks included) collapsed, cut at `limit` with an ellipsis."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def prose(text: str | None) -> str:
    if not text or not text.strip():
        return ""
    cleaned = redact(text.strip())
    return cleaned if len(cleaned) <= MAX_PROSE else cleaned[: MAX_PROSE - 1].rstrip() + "…"


def excerpt(text: str) -> tuple[str, str]:
    """The excerpt trimmed to what fits in an email, and a note saying how much was left out."""
    redacted = redact(text or "").expandtabs(4).strip("\n")
    if not redacted.strip():
        return "", ""
    lines = redacted.splitlines()
    kept = lines[:MAX_EXCERPT_LINES]
    out = "\n".join(line if len(line) <= 400 else line[:399] + "…" for line in kept)
    if len(out) > MAX_EXCERPT_CHARS:
        out = out[:MAX_EXCERPT_CHARS].rstrip() + "…"
    left = len(lines) - len(kept)
    if left > 0:
        return out, f"{left} more line{'s' if left != 1 else ''} on the run page"
    if len(out) < len(redacted):
        return out, "shortened; the full text is on the run page"
    return out, ""


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def when_label(value: datetime | None) -> str:
    """'2026-01-31 03:12 UTC'; '' for None."""
    if value is None:
        return ""
    value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return f"{value.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"


def spec_text(value: Any) -> str:
    """A value of a cluster spec (job settings: anyone who can edit the job wrote it), as one short line."""
    return one_line(redact(str(value)), 80) if value is not None and not isinstance(value, (dict, list)) else ""
