"""Email transports: a small base class (base.py) and one provider per module. ACS is imported lazily."""

from shared.notify.transports.base import EmailTransport, OutgoingEmail, SendResult

__all__ = ["EmailTransport", "OutgoingEmail", "SendResult"]
