"""Errors of the email path. Transports translate their backend's errors into these with `raise ... from exc`."""

from __future__ import annotations

from shared.exceptions import AgentError, PermanentError, TransientError


class EmailError(AgentError):
    """Base of every email error."""


class InvalidAddress(EmailError, PermanentError):
    """An address that is not a plain, single mailbox (or tries to smuggle in a header)."""


class SendFailed(EmailError, TransientError):
    """Not sent this time (server unreachable, timeout, throttled, login refused): the outbox tries again later."""


class SendRejected(EmailError, PermanentError):
    """The service refused this message for good (recipients refused, bounced, malformed): not retried."""
