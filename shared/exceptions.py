"""The agent's own error types. Backend errors are translated at the adapter with `raise ... from exc`."""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""


class TransientError(AgentError):
    """Worth trying again later: the queue message is retried (and ends in the poison queue if it never works)."""


class PermanentError(AgentError):
    """Will fail the same way every time: recorded, and the message completes."""


class ConfigError(PermanentError):
    """Settings are missing or malformed; the message lists every problem."""


class SecretError(TransientError):
    """A secret could not be read (missing, denied, vault unreachable). Retried: an operator can fix it."""


class BadRequest(PermanentError):
    """Input from outside (a webhook body, a queue message) does not fit its schema; names the bad field."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Deferred(AgentError):
    """Not ready to decide yet (the parent run is still running or waiting for Databricks' own retry)."""
