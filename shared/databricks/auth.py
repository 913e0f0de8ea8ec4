"""Access tokens for the Databricks REST API: a personal access token, OAuth M2M for a Databricks service
principal (client id + OAuth secret), or Microsoft Entra ID (managed identity).

A provider hands out the Authorization header value. Tokens never appear in repr, str or logs.
azure.identity is imported only when an Entra token is first needed (it costs cold-start time).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from pydantic import SecretStr

from shared.databricks.errors import TokenUnavailable
from shared.exceptions import ConfigError

log = logging.getLogger(__name__)

# The AzureDatabricks first-party application; its v2 scope (../shared/reference/databricks.md §6).
AZURE_DATABRICKS_APP_ID = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
DATABRICKS_ENTRA_SCOPE = f"{AZURE_DATABRICKS_APP_ID}/.default"


class TokenProvider(Protocol):
    """Gives the value of the Authorization header for the next request."""

    def authorization(self) -> str:
        """`Bearer <token>`, refreshed as needed."""


class PatToken:
    """A Databricks personal access token (dapi...), sent as a bearer token."""

    __slots__ = ("_token",)

    def __init__(self, token: str | SecretStr) -> None:
        value = token.get_secret_value() if isinstance(token, SecretStr) else token
        if not value or not value.strip():
            raise ConfigError("the Databricks personal access token is empty")
        self._token = value.strip()

    def authorization(self) -> str:
        """`Bearer dapi...`."""
        return f"Bearer {self._token}"

    def __repr__(self) -> str:
        return "PatToken(token='**********')"

    __str__ = __repr__


class _CachedToken:
    """A bearer token fetched by `_refresh(now)` (which sets `_token` and `_expires_on`), kept until
    `refresh_margin` s before it expires and shared by every thread."""

    def __init__(self, refresh_margin: float, clock: Callable[[], float]) -> None:
        self._margin = refresh_margin
        self._clock = clock
        self._token: str | None = None
        self._expires_on = 0.0
        self._lock = threading.Lock()

    def authorization(self) -> str:
        """`Bearer <token>`; one fetch per token lifetime."""
        with self._lock:
            now = self._clock()
            if self._token is None or now >= self._expires_on - self._margin:
                self._refresh(now)
            return f"Bearer {self._token}"

    def invalidate(self) -> None:
        """Forget the cached token (after a 401), so the next call fetches a new one."""
        with self._lock:
            self._token, self._expires_on = None, 0.0

    def _refresh(self, now: float) -> None:
        raise NotImplementedError


class EntraToken(_CachedToken):
    """An Entra ID access token for Azure Databricks, cached and refreshed `refresh_margin` s before it expires."""

    def __init__(
        self,
        credential: Any | None = None,
        *,
        client_id: str | None = None,
        scope: str = DATABRICKS_ENTRA_SCOPE,
        refresh_margin: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # `credential` is anything with azure-core's get_token(scope) -> AccessToken(token, expires_on).
        self._credential = credential
        self._client_id = client_id
        self._scope = scope
        super().__init__(refresh_margin, clock)

    def _refresh(self, now: float) -> None:
        from azure.core.exceptions import AzureError  # azure-core only; imported when Entra is in use

        try:
            access = self._get_credential().get_token(self._scope)
        except AzureError as exc:
            if self._token is not None and now < self._expires_on:
                # An early refresh failed but the cached token is still valid: use it, try again next call.
                log.warning(
                    "Entra token refresh failed; using the cached token until it expires",
                    extra={"scope": self._scope, "expires_in_s": int(self._expires_on - now), "error": type(exc).__name__},
                )
                return
            raise TokenUnavailable(f"could not get an Entra ID token for {self._scope}: {exc}") from exc
        self._token, self._expires_on = access.token, float(access.expires_on)
        log.info(
            "fetched an Entra ID token for Databricks",
            extra={"scope": self._scope, "expires_in_s": int(self._expires_on - now)},
        )

    def _get_credential(self) -> Any:
        if self._credential is None:
            self._credential = make_azure_credential(self._client_id)
        return self._credential

    def __repr__(self) -> str:
        return f"EntraToken(scope={self._scope!r}, client_id={self._client_id!r})"

    __str__ = __repr__


class OAuthM2MToken(_CachedToken):
    """A workspace OAuth token for a service principal (client credentials), cached until `refresh_margin` s
    before it expires. As Databricks unified authentication does: POST <host>/oidc/v1/token with HTTP Basic
    client_id:secret, grant_type=client_credentials, scope=all-apis; the answer lasts about an hour."""

    def __init__(
        self,
        host: str,
        client_id: str,
        client_secret: str | SecretStr,
        *,
        scope: str = "all-apis",
        timeout: float = 30.0,
        refresh_margin: float = 300.0,
        clock: Callable[[], float] = time.time,
        session: Any | None = None,
    ) -> None:
        secret = client_secret.get_secret_value() if isinstance(client_secret, SecretStr) else client_secret
        if not client_id or not secret or not secret.strip():
            raise ConfigError("OAuth M2M needs the service principal's client id and OAuth secret")
        from shared.redaction import register_secret  # the secret must never reach a log line

        register_secret(secret.strip())
        self._token_url = host.rstrip("/") + "/oidc/v1/token"
        self._client_id = client_id
        self._secret = secret.strip()
        self._scope = scope
        self._timeout = timeout
        self._session = session
        super().__init__(refresh_margin, clock)

    def _refresh(self, now: float) -> None:
        import requests

        if self._session is None:
            from shared.http_session import ProxySession

            self._session = ProxySession()  # proxies from the environment read once, not on every refresh
        session = self._session
        try:
            response = session.post(
                self._token_url, auth=(self._client_id, self._secret), timeout=self._timeout,
                data={"grant_type": "client_credentials", "scope": self._scope},
                headers={"Accept": "application/json"},
            )
            body = response.json() if response.content else {}
            if response.status_code != 200 or not body.get("access_token"):
                reason = body.get("error_description") or body.get("error") or f"HTTP {response.status_code}"
                raise TokenUnavailable(f"{self._token_url} refused client {self._client_id}: {reason}")
            lifetime = float(body.get("expires_in") or 3600)
        except (requests.RequestException, ValueError, TokenUnavailable) as exc:
            if self._token is not None and now < self._expires_on:
                log.warning("OAuth token refresh failed; using the cached token until it expires",
                            extra={"expires_in_s": int(self._expires_on - now), "error": type(exc).__name__})
                return
            if isinstance(exc, TokenUnavailable):
                raise
            raise TokenUnavailable(f"could not get an OAuth token from {self._token_url}: "
                                   f"{type(exc).__name__}") from exc
        self._token, self._expires_on = str(body["access_token"]), now + lifetime
        log.info("fetched an OAuth M2M token for Databricks",
                 extra={"client_id": self._client_id, "expires_in_s": int(lifetime)})

    def __repr__(self) -> str:
        return f"OAuthM2MToken(token_url={self._token_url!r}, client_id={self._client_id!r})"

    __str__ = __repr__


def make_azure_credential(client_id: str | None = None) -> Any:
    """ManagedIdentityCredential for a user-assigned identity (client id given or AZURE_CLIENT_ID), else Default."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    client_id = client_id or os.environ.get("AZURE_CLIENT_ID") or None
    if client_id:
        return ManagedIdentityCredential(client_id=client_id)
    return DefaultAzureCredential()
