"""An incident's notification through the notifier's outbox (shared/incidents/notices.Notice): one email to one
recipient list and, passed once per incident and kind, its channel message. Idempotent by the ids (the
outbox insert is the guard); a failed send is retried by the timer's flush like any email.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from shared.notify.channels.message import ChannelMessage
from shared.notify.channels.route import channels_for
from shared.notify.outbox import OutboxEntry


def notify_incident(notifier: Any, notice: Any, message: ChannelMessage | None, channel_id: str | None, *,
                    lease: timedelta) -> list[str]:
    """The ids of the notifications written (existing ones included, never sent twice). `notifier`: the
    shared.notify.notifier.Notifier whose outbox, channels and delivery this uses; `lease`: its SEND_LEASE."""
    now = notifier.clock()
    ids: list[str] = []
    if message is not None and channel_id is not None:
        for name in channels_for(message.kind, notifier.routes, set(notifier.channels)):
            cid = f"{channel_id}:{name}"
            ids.append(cid)
            # The message, not the payload, is stored: PagerDuty's payload carries the routing key, a secret.
            entry = OutboxEntry(id=cid, kind=message.kind, channel=name, chain_id=notice.incident_id,
                                category=message.category, headline=message.summary[:300], recipients=[name],
                                recipient_source="channel", subject=message.title, text=message.model_dump_json(),
                                created_at=now, next_attempt_at=now + lease)
            if notifier.outbox.create(entry):  # False: it exists (an earlier delivery wrote it)
                notifier._deliver(entry, now)
    if not notice.to:
        return ids
    entry = OutboxEntry(
        id=notice.id, kind="incident", status="pending" if notifier.enabled else "disabled",
        chain_id=notice.incident_id, headline=notice.headline[:300], recipients=list(notice.to),
        recipient_source="incident", subject=notice.subject, text=notice.text, html=notice.html, created_at=now,
        next_attempt_at=now + lease if notifier.enabled else None,
    )
    # Not through the hourly cap or the repeat window: the incident is what keeps these emails few.
    if notifier.outbox.create(entry) and entry.status == "pending":
        notifier._deliver(entry, now)
    return [notice.id, *ids]
