"""Which channels hear about which notifications.

NOTIFY_CHANNEL_ROUTES maps a notification kind to channels, e.g. "escalation=pagerduty,teams;diagnosis=slack";
a job's tag `ai_agent_channels` ("teams,slack", or "none") replaces the channel list for that job's routed
kinds, only among the channels that are configured (a job author cannot add a destination, nor route a kind
the operator did not). Email is not a channel here: it follows its own recipient rules.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.notify.channels import CHANNELS

KINDS = ("diagnosis", "escalation", "retry", "observe", "outcome", "incident", "resolved")
TAG = "ai_agent_channels"


def parse_routes(text: str | None) -> dict[str, tuple[str, ...]]:
    """'escalation=pagerduty,teams;diagnosis=slack' → {kind: channels}; ValueError naming the bad part."""
    routes: dict[str, tuple[str, ...]] = {}
    for part in (text or "").split(";"):
        if not part.strip():
            continue
        kind, sep, names = part.partition("=")
        kind = kind.strip().lower()
        if not sep or kind not in KINDS:
            raise ValueError(f"{part.strip()!r}: expected <kind>=<channel>[,<channel>] with a kind of {', '.join(KINDS)}")
        chosen = tuple(dict.fromkeys(n.strip().lower() for n in names.split(",") if n.strip()))
        unknown = [c for c in chosen if c not in CHANNELS]
        if unknown:
            raise ValueError(f"{part.strip()!r}: unknown channel {unknown[0]!r} (one of {', '.join(CHANNELS)})")
        routes[kind] = chosen
    return routes


def channels_for(kind: str, routes: Mapping[str, tuple[str, ...]], configured: set[str],
                 tags: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The channels a notification of `kind` goes to, for a job with `tags`.

    The routes say which kinds go to chat or paging at all; a job's tag picks, among the configured
    channels, which ones hear about it ("none": no channel for this job).
    """
    chosen = routes.get(kind, ())
    tag = (tags or {}).get(TAG)
    if chosen and tag is not None:
        wanted = {t.strip().lower() for t in tag.split(",") if t.strip()}
        chosen = () if "none" in wanted else tuple(c for c in CHANNELS if c in wanted)
    return tuple(c for c in chosen if c in configured)
