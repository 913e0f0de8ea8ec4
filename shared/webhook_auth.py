"""Who may announce a failure for which workspace: the webhook's Basic-auth credentials.

Each configured workspace may have its own credential (`webhook_username` and `webhook_password_secret_name`
in DATABRICKS_WORKSPACES); it admits events for that workspace only. WEBHOOK_USERNAME / WEBHOOK_PASSWORD admit
events for every workspace without a credential of its own. Passwords are compared in constant time, against
every credential, so neither timing nor an early exit tells a caller which user names exist.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.settings import Settings


@dataclass(frozen=True)
class Credential:
    """A user name and password, and the workspace keys whose events they admit."""

    username: str
    password: str
    workspaces: frozenset[str]

    def __repr__(self) -> str:  # never the password
        return f"Credential({self.username!r}, workspaces={sorted(self.workspaces)})"


def webhook_credentials(settings: Settings, secrets: Any = None) -> list[Credential]:
    """Every configured credential. `secrets` (a SecretProvider) reads per-workspace passwords; SecretError
    propagates (the caller answers 503: the credential exists but cannot be read now)."""
    from shared.workspaces import workspace_key

    workspaces = settings.workspaces()
    own: list[Credential] = []
    shared_keys: set[str] = set()
    for workspace in workspaces:
        key = workspace_key(workspace)
        if workspace.webhook_username and (workspace.webhook_password or workspace.webhook_password_secret_name):
            password = (workspace.webhook_password.get_secret_value() if workspace.webhook_password
                        else secrets.get(workspace.webhook_password_secret_name))
            own.append(Credential(workspace.webhook_username, password, frozenset({key})))
        else:
            shared_keys.add(key)
    if settings.webhook_username and settings.webhook_password and shared_keys:
        own.append(Credential(settings.webhook_username, settings.webhook_password.get_secret_value(),
                              frozenset(shared_keys)))
    return own


def uncovered_workspaces(settings: Settings) -> list[str]:
    """Keys of the workspaces no credential admits (the webhook takes only the function key for them)."""
    from shared.workspaces import workspace_key

    shared = bool(settings.webhook_username and settings.webhook_password)
    return [workspace_key(w) for w in settings.workspaces()
            if not (w.webhook_username and (w.webhook_password or w.webhook_password_secret_name)) and not shared]


def authenticate(header: str, credentials: Sequence[Credential]) -> Credential | None:
    """The credential the Authorization header carries, or None. Every credential is compared, in constant time."""
    given = _basic(header)
    user, password = given if given is not None else ("", "")
    found: Credential | None = None
    for credential in credentials:
        # Digests first, so neither the time taken nor an early exit tells the caller the expected lengths.
        user_ok = hmac.compare_digest(_digest(user), _digest(credential.username))
        password_ok = hmac.compare_digest(_digest(password), _digest(credential.password))
        if user_ok and password_ok and given is not None and found is None:
            found = credential
    return found


def _basic(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return (user, password) if sep else None


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()
