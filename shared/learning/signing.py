"""Signed, expiring feedback links: HMAC-SHA256 over the decision key and the expiry, checked in constant time.

The signature is a capability for one decision until one moment; it is not the key, and a page may show it.
The key itself lives in Key Vault (FEEDBACK_SIGNING_KEY_SECRET_NAME) or a Key Vault reference.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

_PURPOSE = "feedback-link-v1"  # so a signature made for something else with the same key never fits


def signature(key: bytes, decision_key: str, expires: int) -> str:
    """The link's signature: base64url HMAC-SHA256 of purpose, decision key and expiry (unix seconds)."""
    message = "\n".join((_PURPOSE, decision_key, str(expires))).encode("utf-8")
    return base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode().rstrip("=")


@dataclass(frozen=True)
class LinkCheck:
    """Whether a link's signature holds: status 200, 401 (no signature) or 403 (wrong or expired)."""

    status: Literal[200, 401, 403]
    reason: str

    @property
    def ok(self) -> bool:
        return self.status == 200


def check_link(key: bytes | None, decision_key: str, expires: str | None, sig: str | None, now: datetime) -> LinkCheck:
    """Check a link's `exp` and `sig` parameters for `decision_key`."""
    if not sig or not expires:
        return LinkCheck(401, "this link is not signed: open the link from the email (or use the function key)")
    if key is None:
        return LinkCheck(403, "feedback links are not enabled on this agent (no signing key)")
    if not expires.isdigit() or len(expires) > 12:
        return LinkCheck(403, "the link's exp is not a time")
    # Compared before the expiry, so a forged link learns nothing from which answer it gets.
    if not hmac.compare_digest(signature(key, decision_key, int(expires)).encode(), sig.encode("utf-8", "replace")):
        return LinkCheck(403, "the link's signature does not match (altered, or signed with another key)")
    if int(expires) < now.timestamp():
        return LinkCheck(403, "this feedback link has expired")
    return LinkCheck(200, "signed")


def signed_links(base: str, decision_key: str, key: bytes, now: datetime, lifetime: timedelta) -> dict[str, str]:
    """The email's links: the form ('page') and the same with the Yes / No verdict preselected."""
    expires = int((now + lifetime).timestamp())
    if "{key}" in base:
        page = base.replace("{key}", quote(decision_key, safe=""))
        params: dict[str, str] = {}
    else:
        page, params = base, {"key": decision_key}
    page = with_query(page, **params, exp=str(expires), sig=signature(key, decision_key, expires))
    return {"page": page, "right": with_query(page, verdict="right"), "wrong": with_query(page, verdict="wrong")}


def with_query(url: str, **params: str) -> str:
    """`url` with `params` added to its query string."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))
