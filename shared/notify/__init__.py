"""Email about decisions: which email (kinds), to whom (recipients), what it says (render + templates),
how it leaves (transports), and the outbox that keeps it until it has (outbox, notifier).

Importing this package is cheap: Jinja2 loads on the first render, azure.data.tables on the first outbox
call and azure.communication.email on the first ACS send.
"""

from shared.notify.build import build_notifier, build_transport
from shared.notify.kinds import NotificationKind, kind_for, notification_id, outcome_kind
from shared.notify.notifier import FlushReport, Notifier

__all__ = [
    "FlushReport",
    "NotificationKind",
    "Notifier",
    "build_notifier",
    "build_transport",
    "kind_for",
    "notification_id",
    "outcome_kind",
]
