"""Problems with the settings, and what each part of the agent needs that no single value shows.

`SettingProblem` names a problem by its environment name (MAX_RETRIES, not max_retries). The per-feature
checks here compare settings with each other (a user name without its password, an email transport without
its host); `Settings.problems_for` runs them after every single value has passed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.exceptions import ConfigError

if TYPE_CHECKING:  # shared.settings imports this module
    from shared.settings.model import Settings

# Parts of the agent whose settings can be checked on their own (`Settings.problems_for`).
FEATURES = ("databricks", "storage", "webhook", "secrets", "llm", "email")


@dataclass(frozen=True)
class SettingProblem:
    """One thing wrong with the settings, named by its environment name."""

    setting: str
    message: str
    # False for app settings the agent does not read (reported, but the agent still starts).
    fatal: bool = True

    def __str__(self) -> str:
        return f"{self.setting}: {self.message}"


class InvalidSettings(ConfigError):
    """The settings have problems; `problems` lists every one (the message too)."""

    def __init__(self, problems: list[SettingProblem]) -> None:
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"invalid settings ({count}): " + "; ".join(str(p) for p in problems))


def feature_problems(settings: Settings, feature: str) -> list[SettingProblem]:
    """What `feature` (one of FEATURES) needs and does not have, each named by its environment name."""
    check = _CHECKS.get(feature)
    if check is None:
        raise ValueError(f"unknown feature {feature!r}; one of {', '.join(FEATURES)}")
    return check(settings)


def _databricks(s: Settings) -> list[SettingProblem]:
    if s.databricks_workspaces:
        out = []
        if s.databricks_workspace_url or s.databricks_workspace_id:
            out.append(SettingProblem(
                "DATABRICKS_WORKSPACES",
                "set either DATABRICKS_WORKSPACES or DATABRICKS_HOST / DATABRICKS_WORKSPACE_ID, not both",
            ))
        return out
    if not s.databricks_workspace_url:
        return [SettingProblem(
            "DATABRICKS_HOST",
            "not set: the agent needs a Databricks workspace URL (DATABRICKS_HOST, or its alias "
            "DATABRICKS_WORKSPACE_URL; DATABRICKS_WORKSPACES for several)",
        )]
    if s.databricks_auth == "oauth-m2m" and not s.databricks_client_id:
        return [SettingProblem("DATABRICKS_CLIENT_ID", "not set, but DATABRICKS_AUTH=oauth-m2m needs the service "
                               "principal's client id (and DATABRICKS_CLIENT_SECRET or its Key Vault secret)")]
    if s.databricks_client_secret and not s.databricks_client_id:
        return [SettingProblem("DATABRICKS_CLIENT_ID", "not set, but DATABRICKS_CLIENT_SECRET is: set both")]
    return []


def _storage(s: Settings) -> list[SettingProblem]:
    if s.storage_connection_string:
        return []
    missing = [
        name for name, value in (
            ("AzureWebJobsStorage__queueServiceUri", s.storage_queue_service_uri),
            ("AzureWebJobsStorage__tableServiceUri", s.storage_table_service_uri),
        ) if not value
    ]
    if not missing:
        return []
    if len(missing) == 2:
        return [SettingProblem(
            "AzureWebJobsStorage",
            "not set: give a connection string (local: UseDevelopmentStorage=true), or, with an identity, "
            "AzureWebJobsStorage__accountName or the queue and table service URIs",
        )]
    return [SettingProblem(missing[0], "not set, and AzureWebJobsStorage holds no connection string")]


def _webhook(s: Settings) -> list[SettingProblem]:
    if s.webhook_username and not s.webhook_password:
        return [SettingProblem("WEBHOOK_PASSWORD", "not set, but WEBHOOK_USERNAME is: set both or neither")]
    if s.webhook_password and not s.webhook_username:
        return [SettingProblem("WEBHOOK_USERNAME", "not set, but WEBHOOK_PASSWORD is: set both or neither")]
    return []


def _llm(s: Settings) -> list[SettingProblem]:
    if s.azure_openai_endpoint and not s.azure_openai_deployment:
        return [SettingProblem("AZURE_OPENAI_DEPLOYMENT", "not set, but AZURE_OPENAI_ENDPOINT is")]
    if s.azure_openai_deployment and not s.azure_openai_endpoint:
        return [SettingProblem("AZURE_OPENAI_ENDPOINT", "not set, but AZURE_OPENAI_DEPLOYMENT is")]
    return []


def _email(s: Settings) -> list[SettingProblem]:
    if not s.email_enabled:
        return []
    out = []
    if s.email_transport in ("smtp", "acs") and not s.email_sender:
        out.append(SettingProblem("EMAIL_SENDER", f"not set, but EMAIL_TRANSPORT={s.email_transport} needs it"))
    if s.email_transport == "smtp" and not s.email_smtp_host:
        out.append(SettingProblem("EMAIL_SMTP_HOST", "not set, but EMAIL_TRANSPORT=smtp needs it"))
    if s.email_transport == "acs" and not (
        s.acs_connection_string or s.acs_endpoint or s.acs_connection_string_secret_name
    ):
        out.append(SettingProblem(
            "ACS_ENDPOINT", "not set, nor ACS_CONNECTION_STRING or ACS_CONNECTION_STRING_SECRET_NAME, "
            "but EMAIL_TRANSPORT=acs needs one of them"
        ))
    if s.email_transport == "file" and not s.email_file_dir:
        out.append(SettingProblem("EMAIL_FILE_DIR", "not set, but EMAIL_TRANSPORT=file needs it"))
    return out


def _secrets(s: Settings) -> list[SettingProblem]:
    return []  # KEY_VAULT_URL and the secret names are checked per value


# One entry per name in FEATURES.
_CHECKS: dict[str, Callable[[Settings], list[SettingProblem]]] = {
    "databricks": _databricks,
    "storage": _storage,
    "webhook": _webhook,
    "secrets": _secrets,
    "llm": _llm,
    "email": _email,
}
