"""The workspace's OAuth machine-to-machine token endpoint, as Databricks documents it for service principals.

    POST /oidc/v1/token   Content-Type: application/x-www-form-urlencoded
        grant_type=client_credentials&scope=all-apis   (client id and secret as HTTP Basic, or as form fields)
    200 {"access_token": "...", "token_type": "Bearer", "expires_in": 3600, "scope": "all-apis"}
Errors use the OAuth 2.0 body {"error", "error_description"}: 400 invalid_request / unsupported_grant_type /
invalid_scope, 401 invalid_client. Tokens expire on the workspace clock (so `advance()` ages them); the
lifetime is one hour unless a test shortens it. Discovery documents at /oidc/.well-known/oauth-authorization-server
and /.well-known/databricks-config let databricks-sdk's own M2M flow find the endpoint.
(docs.databricks.com/aws/en/dev-tools/auth/oauth-m2m, "Manually generate OAuth M2M access tokens".)
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any
from urllib.parse import parse_qs

TOKEN_PATH = "/oidc/v1/token"
DISCOVERY_PATHS = ("/oidc/.well-known/oauth-authorization-server", "/.well-known/databricks-config")


class OAuthIssuer:
    """Service principals' secrets, and the access tokens issued to them with their expiry (ms, workspace clock)."""

    def __init__(self) -> None:
        self.lifetime_s = 3600
        self.principals: dict[str, str] = {}
        self.expiry: dict[str, int] = {}
        self.issued: list[str] = []

    def reset(self) -> None:
        self.lifetime_s = 3600
        self.principals.clear()
        self.expiry.clear()
        self.issued.clear()

    def token(self, authorization: str | None, content_type: str | None, raw: bytes, now_ms: int
              ) -> tuple[int, dict[str, Any]]:
        """The token endpoint's answer: (status, JSON body)."""
        if not (content_type or "").lower().startswith("application/x-www-form-urlencoded"):
            return 400, _error("invalid_request", "The request must be application/x-www-form-urlencoded.")
        form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return 400, _error("unsupported_grant_type", f"Unsupported grant_type: {form.get('grant_type')!r}")
        client_id, secret = _basic(authorization)
        if client_id is None:
            client_id, secret = form.get("client_id"), form.get("client_secret")
        if not client_id or self.principals.get(client_id) != secret:
            return 401, _error("invalid_client", "Client authentication failed")
        scopes = (form.get("scope") or "").split()
        if "all-apis" not in scopes:
            return 400, _error("invalid_scope", f"Invalid scope: {form.get('scope')!r}; use all-apis")
        token = "eyJ" + secrets.token_urlsafe(48)  # a JWT in real life; opaque here
        self.expiry[token] = now_ms + self.lifetime_s * 1000
        self.issued.append(token)
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime_s, "scope": "all-apis"}

    def check(self, token: str, now_ms: int) -> bool | None:
        """True: valid; False: issued here but expired; None: never issued here."""
        expires = self.expiry.get(token)
        return None if expires is None else now_ms < expires


def discovery(path: str, base_url: str, workspace_id: str) -> dict[str, Any]:
    if path == "/.well-known/databricks-config":
        return {"oidc_endpoint": f"{base_url}/oidc", "workspace_id": workspace_id}
    return {"issuer": f"{base_url}/oidc", "authorization_endpoint": f"{base_url}/oidc/v1/authorize",
            "token_endpoint": f"{base_url}{TOKEN_PATH}", "grant_types_supported": ["client_credentials",
                                                                                 "authorization_code"]}


def _basic(header: str | None) -> tuple[str | None, str | None]:
    if not header or not header.startswith("Basic "):
        return None, None
    try:
        user, _, password = base64.b64decode(header[len("Basic "):], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return user, password


def _error(code: str, description: str) -> dict[str, Any]:
    return {"error": code, "error_description": description}
