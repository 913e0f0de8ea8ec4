"""EMAIL_TRANSPORT=table: send nothing; the outbox row (subject, bodies, recipients) is the whole record."""

from __future__ import annotations

from shared.notify.transports.base import EmailTransport, OutgoingEmail, SendResult


class TableTransport(EmailTransport):
    """Records only. Useful where no mail service exists yet, or to review what the agent would write."""

    name = "table"

    def describe(self) -> str:
        return "table (records each email in the outbox table; sends nothing)"

    def _send(self, email: OutgoingEmail) -> SendResult:
        return SendResult(self.name, status="recorded", detail="recorded in the outbox; not sent")
