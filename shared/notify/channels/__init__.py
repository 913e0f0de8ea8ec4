"""Escalation channels beside email: Microsoft Teams (Workflows webhook, Adaptive Card), Slack (incoming
webhook, Block Kit) and PagerDuty (Events API v2). One message model, one payload builder per channel, one
HTTP sender, and routing from settings and job tags. The notifier puts each channel message in the outbox,
like an email, so a failed send is retried by the timer and a redelivery never sends twice.
"""

CHANNELS = ("teams", "slack", "pagerduty")
