"""Secrets: a small base class that caches, expires and explains; one provider per backend.

`SecretProvider.get(name)` does the shared work (cache with a TTL, error wrapping, registering the value with
the log redaction); a backend implements `_fetch(name)`, returning the value or None when there is no such
secret, and raising SecretAccessDenied / SecretUnavailable for the rest. Every error names the secret and the
vault (or other source), and is a SecretError, hence a TransientError: the queue message is retried, not lost.

Key Vault and azure-identity are imported on first use only (cold start).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.exceptions import ConfigError, SecretError
from shared.redaction import register_secret
from shared.settings import KEY_VAULT_REFERENCE_FIX, KEY_VAULT_REFERENCE_PREFIX, SECRET_NAME_PATTERN, env_name

if TYPE_CHECKING:
    from shared.settings import Settings

# Settings that hold a secret directly -> the setting naming the secret to read when they are unset.
SECRET_SETTINGS = {
    "databricks_pat_token": "databricks_pat_secret_name",
    "azure_openai_api_key": "azure_openai_api_key_secret_name",
    "email_password": "email_password_secret_name",
    "acs_connection_string": "acs_connection_string_secret_name",
}


class _NamedSecretError(SecretError):
    """A SecretError that names the secret and where it was looked for."""

    def __init__(self, secret_name: str, source: str, reason: str) -> None:
        super().__init__(f"secret {secret_name!r} in {source}: {reason}")
        self.secret_name = secret_name
        self.source = source
        self.reason = reason


class SecretNotFound(_NamedSecretError):
    """No secret of that name in the source (or it is empty)."""


class SecretAccessDenied(_NamedSecretError):
    """The source refused to hand the secret over (no role, disabled secret, no credential)."""


class SecretUnavailable(_NamedSecretError):
    """The source could not be reached, failed, or holds an unusable value."""


@dataclass
class _Cached:
    value: str
    expires: float


class SecretProvider:
    """Reads secrets by name. Subclasses implement `_fetch`; `get` caches, expires and explains."""

    #: Where secrets come from, as error messages name it ("Key Vault https://kv.vault.azure.net").
    source = "secrets"

    def __init__(self, *, ttl_seconds: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> str:
        """The secret's value; SecretError (naming the secret and the source) when it cannot be had."""
        now = self._clock()
        with self._lock:
            hit = self._cache.get(name)
        if hit is not None and now < hit.expires:
            return hit.value
        try:
            value = self._fetch(name)
        except SecretError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the backend raises becomes one clear, retried error
            raise SecretUnavailable(name, self.source, f"reading failed: {type(exc).__name__}: {exc}") from exc
        if value is None:
            raise SecretNotFound(name, self.source, "not found; " + self._not_found_hint(name))
        if value.strip().startswith(KEY_VAULT_REFERENCE_PREFIX):
            reason = f"holds an unresolved Key Vault reference: {KEY_VAULT_REFERENCE_FIX}"
            raise SecretUnavailable(name, self.source, reason)
        if not value:
            raise SecretNotFound(name, self.source, "is empty")
        register_secret(value)
        if self.ttl_seconds > 0:
            with self._lock:
                self._cache[name] = _Cached(value, now + self.ttl_seconds)
        return value

    def get_optional(self, name: str) -> str | None:
        """Like get, but None when the secret does not exist. Denied or unreachable still raise."""
        try:
            return self.get(name)
        except SecretNotFound:
            return None

    def invalidate(self, name: str | None = None) -> None:
        """Forget one cached secret (or all), e.g. after the backend rejected it."""
        with self._lock:
            if name is None:
                self._cache.clear()
            else:
                self._cache.pop(name, None)

    def close(self) -> None:
        """Release the backend's resources, if any."""

    # --- hooks ---------------------------------------------------------------------------------------
    def _fetch(self, name: str) -> str | None:
        """The value, or None when there is no such secret. Raise SecretAccessDenied / SecretUnavailable."""
        raise NotImplementedError

    def _not_found_hint(self, name: str) -> str:
        return "create it, or point the *_SECRET_NAME setting at the right name"


class MemorySecretProvider(SecretProvider):
    """Secrets from a dict: unit tests and the demo."""

    source = "memory"

    def __init__(self, values: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.values = dict(values or {})

    def _fetch(self, name: str) -> str | None:
        return self.values.get(name)


def env_variable_for(name: str) -> str:
    """The environment variable a secret name maps to: 'databricks-pat' -> DATABRICKS_PAT."""
    return re.sub(r"[^0-9A-Za-z]", "_", name).upper()


class EnvSecretProvider(SecretProvider):
    """Secrets from the environment, for local runs and tests: 'databricks-pat' is DATABRICKS_PAT (or the exact name).

    Not cached by default: the environment is read on each call, so a changed value is seen at once.
    """

    def __init__(self, env: Mapping[str, str] | None = None, *, ttl_seconds: float = 0.0, **kwargs: Any) -> None:
        super().__init__(ttl_seconds=ttl_seconds, **kwargs)
        self._env = env

    @property
    def source(self) -> str:  # type: ignore[override]
        return "the environment"

    def _fetch(self, name: str) -> str | None:
        env = os.environ if self._env is None else self._env
        for key in (env_variable_for(name), name):
            if env.get(key):
                return env[key]
        return None

    def _not_found_hint(self, name: str) -> str:
        return f"set {env_variable_for(name)} (locally: in local.settings.json), or set KEY_VAULT_URL to read Key Vault"


class KeyVaultSecretProvider(SecretProvider):
    """Secrets from Azure Key Vault through SecretClient.

    The credential is the user-assigned managed identity with `client_id` when given, else
    DefaultAzureCredential (system identity in Azure, az login locally). `client_kwargs` go to SecretClient
    (tests: verify_challenge_resource=False and connection_verify=<cert>; never in production).
    """

    def __init__(
        self,
        vault_url: str,
        *,
        credential: Any = None,
        client_id: str | None = None,
        ttl_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        **client_kwargs: Any,
    ) -> None:
        super().__init__(ttl_seconds=ttl_seconds, clock=clock)
        self.vault_url = vault_url.rstrip("/")
        self._credential = credential
        self._client_id = client_id
        # Fail fast: the queue retries the message anyway, so a long in-process retry only delays that.
        self._client_kwargs = {"retry_total": 2, "connection_timeout": 10, "read_timeout": 20, **client_kwargs}
        self._client: Any = None
        self._client_lock = threading.Lock()

    @property
    def source(self) -> str:  # type: ignore[override]
        return f"Key Vault {self.vault_url}"

    def _secret_client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                from azure.keyvault.secrets import SecretClient

                credential = self._credential if self._credential is not None else _credential(self._client_id)
                self._client = SecretClient(self.vault_url, credential, **self._client_kwargs)
            return self._client

    def _fetch(self, name: str) -> str | None:
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ResourceNotFoundError,
            ServiceRequestError,
            ServiceResponseError,
        )

        if not re.match(SECRET_NAME_PATTERN, name):
            raise SecretUnavailable(name, self.source, "is not a Key Vault secret name (letters, digits, dashes)")
        try:
            secret = self._secret_client().get_secret(name)
        except ResourceNotFoundError:
            return None
        except ClientAuthenticationError as exc:
            raise SecretAccessDenied(name, self.source, _denied_reason(exc)) from exc
        except HttpResponseError as exc:
            if exc.status_code == 403:
                raise SecretAccessDenied(name, self.source, _denied_reason(exc)) from exc
            reason = f"Key Vault answered HTTP {exc.status_code} {_error_code(exc)}".rstrip()
            raise SecretUnavailable(name, self.source, reason) from exc
        except (ServiceRequestError, ServiceResponseError) as exc:
            reason = f"the vault could not be reached ({type(exc).__name__}: {_first_line(exc)})"
            raise SecretUnavailable(name, self.source, reason) from exc
        return secret.value or ""

    def _not_found_hint(self, name: str) -> str:
        return "create it in the vault, or point the *_SECRET_NAME setting (or pat_secret_name) at the right name"

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def _credential(client_id: str | None) -> Any:
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if client_id:
        return ManagedIdentityCredential(client_id=client_id)
    return DefaultAzureCredential()


def _error_code(exc: Any) -> str:
    error = getattr(exc, "error", None)
    return getattr(error, "code", None) or ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else ""


def _denied_reason(exc: Any) -> str:
    status = getattr(exc, "status_code", None)
    if status is None:
        return (f"no Azure credential could get a token ({_first_line(exc)}); in Azure check AZURE_CLIENT_ID and the "
                "identity, locally run az login")
    code = _error_code(exc)
    return (f"access denied (HTTP {status}{' ' + code if code else ''}): give the app's identity the Key Vault "
            "Secrets User role on the vault, and check that the secret is enabled")


def build_secret_provider(settings: Settings, *, env: Mapping[str, str] | None = None) -> SecretProvider:
    """Key Vault when KEY_VAULT_URL is set, else the environment (`env`, default os.environ)."""
    if settings.key_vault_url:
        return KeyVaultSecretProvider(
            settings.key_vault_url, client_id=settings.azure_client_id, ttl_seconds=settings.secret_cache_seconds
        )
    return EnvSecretProvider(env)


def resolve_secret(settings: Settings, secrets: SecretProvider, field: str, *, required: bool = False) -> str | None:
    """A secret setting's value: given directly (or by an App Service Key Vault reference), else read from
    `secrets` under the name its *_SECRET_NAME setting holds. None when neither has it, unless `required`."""
    if field not in SECRET_SETTINGS:
        raise ConfigError(f"{field} is not a secret setting; one of {', '.join(SECRET_SETTINGS)}")
    direct = getattr(settings, field)
    if direct is not None and direct.get_secret_value():
        return direct.get_secret_value()
    name = getattr(settings, SECRET_SETTINGS[field])
    if not name:
        if required:
            raise ConfigError(f"{env_name(field)} is not set, nor {secret_name_setting(field)}")
        return None
    if required:
        return secrets.get(name)
    return secrets.get_optional(name)


def secret_name_setting(field: str) -> str:
    """The environment name of the setting that names `field`'s secret (DATABRICKS_PAT_SECRET_NAME ...)."""
    return env_name(SECRET_SETTINGS[field])
