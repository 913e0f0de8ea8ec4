"""The three wire formats, built from one ChannelMessage.

- Teams: a Workflows ("When a Teams webhook request is received") webhook takes a message with one Adaptive
  Card attachment (content type application/vnd.microsoft.card.adaptive, card version 1.4).
- Slack: an incoming webhook takes `text` (the notification fallback) and Block Kit `blocks`.
- PagerDuty: Events API v2 `trigger` with `payload.summary/source/severity` (summary ≤ 1024 characters) and
  `dedup_key`, or `resolve` with the same `dedup_key` and no payload.
Links go only to the run page the Jobs API gave (the workspace host); nothing else in a message is a link.
"""

from __future__ import annotations

from typing import Any

from shared.notify.channels.message import ChannelMessage

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
_COLOR = {"critical": "attention", "error": "warning", "warning": "warning", "info": "good"}


def teams(message: ChannelMessage) -> dict[str, Any]:
    """A Teams Workflows webhook body: one Adaptive Card."""
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": message.title, "weight": "Bolder", "size": "Medium", "wrap": True,
         "color": _COLOR[message.severity]},
        {"type": "TextBlock", "text": message.summary, "wrap": True},
    ]
    if message.facts:
        body.append({"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in message.facts]})
    card: dict[str, Any] = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
                            "version": "1.4", "body": body}
    if message.run_url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open the run", "url": message.run_url}]
    return {"type": "message", "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}]}


def slack(message: ChannelMessage) -> dict[str, Any]:
    """A Slack incoming-webhook body: fallback text and Block Kit blocks."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": message.title[:150]}},
        {"type": "section", "text": {"type": "plain_text", "text": message.summary[:3000]}},
    ]
    if message.facts:
        blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{_mrkdwn(k)}*\n{_mrkdwn(v)}"}
                                                     for k, v in message.facts[:10]]})
    if message.run_url:
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Open the run"}, "url": message.run_url}]})
    return {"text": f"{message.title}: {message.summary}"[:3000], "blocks": blocks}


def pagerduty(message: ChannelMessage, routing_key: str) -> dict[str, Any]:
    """A PagerDuty Events API v2 event: trigger (with payload) or resolve (dedup key only)."""
    event: dict[str, Any] = {"routing_key": routing_key, "event_action": message.event if message.event != "info"
                             else "trigger", "dedup_key": message.dedup_key}
    if event["event_action"] == "resolve":
        return event
    event["payload"] = {
        "summary": f"{message.title}: {message.summary}"[:1024], "source": message.source,
        "severity": message.severity, "component": message.component, "group": message.group,
        "class": message.category, "custom_details": dict(message.facts),
    }
    event["payload"] = {k: v for k, v in event["payload"].items() if v is not None}
    if message.run_url:
        event["links"] = [{"href": message.run_url, "text": "Open the run"}]
    return event


def _mrkdwn(text: str) -> str:
    # Slack's mrkdwn: &, < and > must be escaped or a job name could become a link or a mention.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
