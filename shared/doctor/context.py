"""What a doctor check gets (DoctorContext) and returns (CheckResult rows), and helpers the checks share."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.secrets import SecretProvider, build_secret_provider
from shared.settings import SettingProblem, Settings

READY, NOT_READY, SKIPPED = "READY", "NOT READY", "SKIPPED"


@dataclass(frozen=True)
class CheckResult:
    """One row of the doctor's table."""

    name: str
    status: str
    detail: str
    fix: str = ""
    # A NOT READY row that is not required is shown but does not make the exit code non-zero.
    required: bool = True


@dataclass
class DoctorContext:
    """What every check gets: the settings (best effort), their problems, the secrets and a timeout."""

    env: Mapping[str, str]
    settings: Settings
    problems: list[SettingProblem]
    timeout: float = 10.0
    secrets: SecretProvider | None = None
    # Options for clients that tests point at local fakes (never set in production).
    storage_kwargs: dict[str, Any] = field(default_factory=dict)
    smtp_ssl_context: ssl.SSLContext | None = None
    # Also send one 1-token chat completion to the deployment (verifies it exists; costs a few tokens).
    llm_call: bool = False

    def secret_provider(self) -> SecretProvider:
        if self.secrets is None:
            self.secrets = build_secret_provider(self.settings, env=self.env)
        return self.secrets


Check = Callable[[DoctorContext], Iterable[CheckResult]]


def shown(value: str | None) -> str:
    """How a secret appears in the doctor's output: its last four characters at most."""
    if not value:
        return "(empty)"
    return f"…{value[-4:]}" if len(value) >= 12 else "(set)"


def azure_credential(s: Settings) -> Any:
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if s.azure_client_id:
        return ManagedIdentityCredential(client_id=s.azure_client_id)
    return DefaultAzureCredential()


def host(url: str) -> str:
    """scheme://host of a URL, for rows that say where a service was reached."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
