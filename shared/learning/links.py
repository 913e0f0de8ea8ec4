"""The emails' feedback links: where they point (FEEDBACK_URL, else this app's own endpoint) and the key that
signs them (FEEDBACK_SIGNING_KEY, else the Key Vault secret FEEDBACK_SIGNING_KEY_SECRET_NAME names).

Light on purpose: the email renderer imports it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.exceptions import SecretError
from shared.learning.signing import signed_links

if TYPE_CHECKING:
    from shared.settings import Settings

log = logging.getLogger(__name__)


def link_base(settings: Settings) -> str | None:
    """FEEDBACK_URL, else this app's own feedback endpoint when the host names itself (WEBSITE_HOSTNAME)."""
    if settings.feedback_url:
        return settings.feedback_url
    host = (settings.website_hostname or "").strip().strip("/")
    if not host or any(c in host for c in "/?#@ "):
        return None
    scheme = "http" if host.split(":")[0] in ("localhost", "127.0.0.1") else "https"
    return f"{scheme}://{host}/api/feedback/{{key}}"


def signing_key_reader(settings: Settings, secrets: Any) -> Callable[[], bytes | None]:
    """Reads the link key: FEEDBACK_SIGNING_KEY, else the secret FEEDBACK_SIGNING_KEY_SECRET_NAME names."""

    def read() -> bytes | None:
        if settings.feedback_signing_key is not None and settings.feedback_signing_key.get_secret_value():
            return settings.feedback_signing_key.get_secret_value().encode("utf-8")
        try:
            value = secrets.get_optional(settings.feedback_signing_key_secret_name) if secrets is not None else None
        except SecretError as exc:
            log.warning("feedback signing key not readable: %s", exc)
            return None
        return value.encode("utf-8") if value else None

    return read


def email_links(settings: Settings, decision_key: str, now: datetime | None = None) -> dict[str, str] | None:
    """The email's feedback links, signed with the key `with_link_key` put into these settings; None without."""
    from shared.decision import utcnow

    key = settings.feedback_signing_key.get_secret_value() if settings.feedback_signing_key else ""
    base = link_base(settings)
    if not (key and base):
        return None
    return signed_links(base, decision_key, key.encode("utf-8"), now or utcnow(),
                        timedelta(days=settings.feedback_link_days))


def with_link_key(settings: Settings, secrets: Any) -> Settings:
    """The settings the notifier renders with: the link key read once (from Key Vault) into them, when there is one.

    A key that cannot be read leaves emails without feedback links (logged), never stops a decision.
    """
    if settings.feedback_signing_key is not None:
        return settings
    from pydantic import SecretStr

    value = signing_key_reader(settings, secrets)()
    if value is None:
        if link_base(settings):
            log.warning("no feedback signing key (%s): emails go out without feedback links",
                        settings.feedback_signing_key_secret_name)
        return settings
    return settings.model_copy(update={"feedback_signing_key": SecretStr(value.decode("utf-8"))})
