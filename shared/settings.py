"""The agent's settings: one typed object read from the environment (app settings / local.settings.json).

Names keep the original design's where they exist (DATABRICKS_WORKSPACE_URL, MAX_RETRIES, EMAIL_* ...).
`load_settings()` validates everything at once and raises one ConfigError listing every problem, each named
by its environment name (MAX_RETRIES, not max_retries): malformed and out-of-range values, unresolved Key
Vault references, DATABRICKS_WORKSPACES problems, and settings a feature needs but does not have.
`check_settings()` returns the same problems with the best settings object it could build (bad values
replaced by their defaults), for `python -m shared doctor`.

Each field's description is the documentation: docs/configuration.md and local.settings.json.example are
checked against it by tests, so they cannot drift apart.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from shared.exceptions import ConfigError

KEY_VAULT_REFERENCE_PREFIX = "@Microsoft.KeyVault("
KEY_VAULT_REFERENCE_FIX = (
    "App Service could not read the secret: check that it exists, that the app's identity has the "
    "Key Vault Secrets User role on the vault, and (user-assigned identity) the site's keyVaultReferenceIdentity"
)
# Key Vault secret names: 1-127 letters, digits and dashes.
SECRET_NAME_PATTERN = r"^[0-9A-Za-z-]{1,127}$"

CommaList = Annotated[list[str], NoDecode]

# Parts of the agent whose settings can be checked on their own (`Settings.problems_for`).
FEATURES = ("databricks", "storage", "webhook", "secrets", "llm", "email")


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _http_url(value: str | None, *, https_only: bool = False) -> str | None:
    if value is None:
        return None
    value = value.strip()
    schemes = ("https://",) if https_only else ("https://", "http://")
    if not value.startswith(schemes) or len(value) <= len("https://"):
        raise ValueError(
            "must be an https:// URL" if https_only else "must start with https:// (http:// only for a local fake)"
        )
    return value.rstrip("/")


def _workspace_id(value: object) -> str | None:
    """Databricks workspace ids are numbers (the webhook carries one); kept as their decimal string."""
    if value is None:
        return None
    if isinstance(value, bool) or not str(value).strip().isdigit():
        raise ValueError("must be the numeric workspace id (the number after ?o= in the workspace URL)")
    return str(int(str(value).strip()))


class WorkspaceConfig(BaseModel):
    """One Databricks workspace the agent serves."""

    model_config = ConfigDict(extra="forbid")

    workspace_id: str | None = Field(
        default=None, description="The webhook's workspace_id; None accepts any (single-workspace setups)."
    )
    url: str = Field(description="https://adb-<id>.<n>.azuredatabricks.net")
    auth: Literal["pat", "entra"] = "pat"
    pat_token: SecretStr | None = Field(default=None, description="A PAT given directly (local runs).")
    pat_secret_name: str | None = Field(
        default=None, description="Name of the secret holding the PAT (Key Vault, or the environment locally)."
    )

    @field_validator("workspace_id", mode="before")
    @classmethod
    def _id_as_string(cls, value: object) -> object:
        # Ids arrive as JSON numbers or strings; the webhook's is normalised to a string, so compare strings.
        return str(value).strip() if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (http:// only for a local simulator)")
        return value.rstrip("/")

    @field_validator("pat_secret_name")
    @classmethod
    def _secret_name(cls, value: str | None) -> str | None:
        if value is not None and not re.match(SECRET_NAME_PATTERN, value):
            raise ValueError("must be a Key Vault secret name: 1-127 letters, digits and dashes")
        return value

    @model_validator(mode="after")
    def _pat_has_a_source(self) -> "WorkspaceConfig":
        if self.auth == "pat" and self.pat_token is None and not self.pat_secret_name:
            raise ValueError('auth "pat" needs pat_secret_name (or pat_token for local runs); or use auth "entra"')
        return self


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


# The mapping the environment source reads: os.environ unless load_settings(env) says otherwise.
_ENVIRONMENT: ContextVar[Mapping[str, str] | None] = ContextVar("settings_environment", default=None)


class _EnvironmentSource(EnvSettingsSource):
    """The standard environment source, reading `load_settings(env)`'s mapping when one is given."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        env = _ENVIRONMENT.get()
        return parse_env_vars(
            os.environ if env is None else env, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


class Settings(BaseSettings):
    """Every setting the app reads. Field descriptions are the README's configuration table."""

    # Empty values count as unset: App Service and local.settings.json often hold "" for "not configured".
    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    # --- Databricks ---------------------------------------------------------------------------------
    databricks_workspace_url: str | None = Field(
        default=None, description="URL of the one Databricks workspace, https://adb-<id>.<n>.azuredatabricks.net."
    )
    databricks_pat_token: SecretStr | None = Field(
        default=None,
        description="Personal access token for that workspace (in Azure: a Key Vault reference). Unset with "
        "DATABRICKS_AUTH=pat: read from the secret named by DATABRICKS_PAT_SECRET_NAME.",
    )
    databricks_auth: Literal["pat", "entra"] | None = Field(
        default=None,
        description="pat (a personal access token) or entra (the app's managed identity, added to the workspace "
        "as a service principal). Unset: pat when DATABRICKS_PAT_TOKEN is set, else entra.",
    )
    databricks_workspace_id: str | None = Field(
        default=None,
        description="Numeric id of that workspace; webhooks carrying another id are rejected. Unset: any id.",
    )
    databricks_workspaces: str | None = Field(
        default=None,
        description="Several workspaces, as a JSON list instead of the DATABRICKS_WORKSPACE_* settings: "
        '[{"workspace_id": "123", "url": "https://...", "auth": "pat", "pat_secret_name": "ws123-pat"}, '
        '{"workspace_id": "456", "url": "https://...", "auth": "entra"}].',
    )
    databricks_pat_secret_name: str = Field(
        default="databricks-pat",
        pattern=SECRET_NAME_PATTERN,
        description="Secret (Key Vault, or the environment locally) holding the PAT when DATABRICKS_AUTH=pat and "
        "DATABRICKS_PAT_TOKEN is not set.",
    )
    databricks_http_timeout_seconds: float = Field(
        default=30.0, gt=0, le=300, description="Timeout of each Jobs API call, in seconds."
    )
    azure_client_id: str | None = Field(
        default=None,
        description="Client id of the user-assigned managed identity used for Databricks (entra), Key Vault "
        "and storage. Unset: DefaultAzureCredential (system identity, or your az login locally).",
    )

    # --- Decisions and actions ----------------------------------------------------------------------
    agent_mode: Literal["act", "observe"] = Field(
        default="act", description="act, or observe: decide, record and notify, but change nothing in Databricks."
    )
    max_retries: int = Field(
        default=3, ge=0, le=10, description="Agent attempts per chain of failures before it escalates (0-10)."
    )
    resize_node_ladders: str = Field(
        default=(
            "Standard_DS3_v2,Standard_DS4_v2,Standard_DS5_v2;"
            "Standard_D4ds_v5,Standard_D8ds_v5,Standard_D16ds_v5,Standard_D32ds_v5;"
            "Standard_E4ds_v5,Standard_E8ds_v5,Standard_E16ds_v5,Standard_E32ds_v5"
        ),
        description="Node-type ladders for a resize: ';' between families, ',' between sizes, smallest first.",
    )
    resize_max_workers: int = Field(
        default=16, ge=1, le=1000, description="Upper bound on a cluster's workers after a resize (1-1000)."
    )
    resize_allowed_spark_conf: CommaList = Field(
        default_factory=lambda: ["spark.sql.autoBroadcastJoinThreshold", "spark.sql.shuffle.partitions"],
        description="Comma-separated spark_conf keys a resize (or the LLM) may change.",
    )
    resize_revert: bool = Field(
        default=True, description="Revert a resized job cluster to its original spec once its rerun has ended."
    )

    # --- Timer (poller) -----------------------------------------------------------------------------
    poll_schedule: str = Field(
        default="0 */5 * * * *", description="NCRONTAB schedule of the poller (six fields, seconds first)."
    )
    poll_lookback_minutes: int = Field(
        default=60, ge=1, le=60 * 24 * 7, description="First poll of a workspace: how far back to look, in minutes."
    )
    poll_overlap_minutes: int = Field(
        default=10, ge=0, le=24 * 60, description="Each poll re-reads this many minutes before its checkpoint."
    )
    defer_seconds: int = Field(
        default=60, ge=1, le=3600, description="Delay before a deferred event (parent run still running) is re-read."
    )
    claim_lease_seconds: int = Field(
        default=600, ge=30, le=86400, description="After this many seconds a stuck claim on a run can be taken over."
    )

    # --- Webhook ------------------------------------------------------------------------------------
    webhook_username: str | None = Field(
        default=None,
        description="Basic-auth user name of the Databricks notification destination. Set with "
        "WEBHOOK_PASSWORD, or leave both unset (then only the function key protects the webhook).",
    )
    webhook_password: SecretStr | None = Field(
        default=None,
        description="Basic-auth password of the notification destination (in Azure: a Key Vault reference).",
    )

    # --- Storage ------------------------------------------------------------------------------------
    storage_connection_string: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("AzureWebJobsStorage", "STORAGE_CONNECTION_STRING"),
        description="Storage connection string for queues and tables (local: UseDevelopmentStorage=true). "
        "Unset in Azure, where the identity and the service URIs below are used.",
    )
    storage_account_name: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AzureWebJobsStorage__accountName", "STORAGE_ACCOUNT_NAME"),
        description="Identity-based storage: the account name (public cloud); the queue and table URIs follow.",
    )
    storage_queue_service_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AzureWebJobsStorage__queueServiceUri", "STORAGE_QUEUE_SERVICE_URI"),
        description="Identity-based storage: https://<account>.queue.core.windows.net.",
    )
    storage_table_service_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AzureWebJobsStorage__tableServiceUri", "STORAGE_TABLE_SERVICE_URI"),
        description="Identity-based storage: https://<account>.table.core.windows.net.",
    )
    decisions_table: str = Field(
        default="agentdecisions", pattern=r"^[A-Za-z][A-Za-z0-9]{2,62}$", description="Table of decision records."
    )
    state_table: str = Field(
        default="agentstate",
        pattern=r"^[A-Za-z][A-Za-z0-9]{2,62}$",
        description="Table of the agent's own state (poller checkpoints, caches).",
    )
    outbox_table: str = Field(
        default="agentoutbox", pattern=r"^[A-Za-z][A-Za-z0-9]{2,62}$", description="Table of notifications to send."
    )

    # --- Secrets ------------------------------------------------------------------------------------
    key_vault_url: str | None = Field(
        default=None,
        description="https://<vault>.vault.azure.net: read the *_SECRET_NAME secrets from this vault. Unset: "
        "read them from the environment (secret databricks-pat = variable DATABRICKS_PAT).",
    )
    secret_cache_seconds: int = Field(
        default=300,
        ge=0,
        le=86400,
        description="How long a secret read from Key Vault is kept in memory, in seconds (0: no cache).",
    )
    # --- Azure OpenAI -------------------------------------------------------------------------------
    azure_openai_endpoint: str | None = Field(
        default=None, description="https://<resource>.openai.azure.com; unset: rules only, no LLM."
    )
    azure_openai_api_key: SecretStr | None = Field(
        default=None, description="API key (in Azure: a Key Vault reference); unset: Entra ID (the app's identity)."
    )
    azure_openai_api_key_secret_name: str = Field(
        default="azure-openai-api-key",
        pattern=SECRET_NAME_PATTERN,
        description="Secret holding the API key when AZURE_OPENAI_API_KEY is not set; not found: Entra ID.",
    )
    azure_openai_deployment: str | None = Field(default=None, description="Chat model deployment name.")
    azure_openai_model: str | None = Field(default=None, description="Model name (for the cache key and prices).")
    azure_openai_api_version: str = Field(default="2024-10-21", description="Azure OpenAI REST API version.")
    llm_confidence_threshold: float = Field(
        default=0.75, ge=0, le=1, description="Ask the LLM when the rules' confidence is below this (0-1)."
    )
    llm_timeout_seconds: float = Field(default=20.0, gt=0, le=120, description="Timeout of one LLM call, in seconds.")
    llm_ask_for_emails: bool = Field(
        default=False,
        description="Also ask the LLM when the rules are sure but a person must fix the failure (SEND_EMAIL), "
        "to write the root cause and fix; the rules' verdict stands.",
    )
    llm_may_override: Literal["unsure", "unknown", "never"] = Field(
        default="unsure",
        description="When the LLM may change the rules' category: unsure (rules said unknown or were below "
        "LLM_CONFIDENCE_THRESHOLD), unknown (only unknown), never (it only explains).",
    )
    llm_max_prompt_tokens: int = Field(
        default=1800, ge=1600, le=16000,
        description="Upper bound on one prompt's estimated tokens (characters/3, an overestimate; schema "
        "included); the error excerpt is trimmed to fit.",
    )
    llm_max_completion_tokens: int = Field(
        default=500, ge=100, le=4000, description="max_tokens of one LLM answer; a longer answer counts as truncated."
    )
    llm_price_prompt_per_1k: float = Field(
        default=0.0025, ge=0, description="Price of 1,000 prompt tokens in USD (your deployment's price), for cost figures."
    )
    llm_price_completion_per_1k: float = Field(
        default=0.01, ge=0, description="Price of 1,000 completion tokens in USD, for cost figures."
    )
    llm_daily_max_calls: int = Field(
        default=500, ge=0, description="LLM calls per UTC day, all workers together (approximate); then rules only. 0: no cap."
    )
    llm_daily_budget_usd: float = Field(
        default=5.0, ge=0, description="Estimated LLM cost per UTC day in USD; then rules only. 0: no cap."
    )
    llm_cache_ttl_hours: int = Field(
        default=168, ge=0, le=24 * 365,
        description="How long an LLM answer is reused for the same failure fingerprint, in hours. 0: no cache.",
    )

    # --- Email --------------------------------------------------------------------------------------
    email_enabled: bool = Field(default=False, description="Send email; off: notifications are only recorded.")
    email_transport: Literal["smtp", "acs", "file", "table"] = Field(
        default="smtp", description="smtp, acs (Azure Communication Services), file (local), or table (outbox only)."
    )
    email_sender: str | None = Field(default=None, description="From address.")
    email_password: SecretStr | None = Field(
        default=None, description="SMTP password (in Azure: a Key Vault reference)."
    )
    email_smtp_host: str | None = Field(default=None, description="SMTP server host name.")
    email_smtp_port: int = Field(default=587, ge=1, le=65535, description="SMTP server port.")
    email_smtp_username: str | None = Field(default=None, description="SMTP user name; defaults to EMAIL_SENDER.")
    email_smtp_security: Literal["starttls", "ssl", "none"] = Field(
        default="starttls", description="starttls, ssl (implicit TLS, usually port 465) or none (local sinks only)."
    )
    acs_connection_string: SecretStr | None = Field(
        default=None, description="ACS connection string (in Azure: a Key Vault reference); or set ACS_ENDPOINT."
    )
    acs_endpoint: str | None = Field(
        default=None, description="https://<resource>.communication.azure.com, used with the app's identity."
    )
    email_default_recipients: CommaList = Field(
        default_factory=list, description="Comma-separated addresses that get every notification."
    )
    email_escalation_recipients: CommaList = Field(
        default_factory=list, description="Comma-separated addresses that get escalations."
    )
    email_file_dir: str | None = Field(default=None, description="EMAIL_TRANSPORT=file: where .eml/.html files go.")
    feedback_url: str | None = Field(default=None, description="Link in emails where a reader rates the decision.")
    email_sender_name: str = Field(default="Databricks AI agent", description="Display name in the From header (SMTP).")
    email_password_secret_name: str | None = Field(
        default=None, description="Key Vault secret holding the SMTP password, when EMAIL_PASSWORD is not set."
    )
    acs_connection_string_secret_name: str | None = Field(
        default=None,
        description="Key Vault secret holding the ACS connection string, when ACS_CONNECTION_STRING is not set.",
    )
    email_smtp_timeout_seconds: float = Field(default=30.0, gt=0, le=300, description="Timeout of each SMTP step.")
    acs_send_timeout_seconds: float = Field(
        default=30.0, gt=0, le=300, description="How long to wait for ACS to confirm a send before leaving it running."
    )
    acs_poll_interval_seconds: float = Field(default=2.0, ge=0, le=60, description="Between ACS send-status checks.")
    email_recipients_tag: str = Field(
        default="ai_agent_notify",
        description="Job tag naming recipients (comma-separated), used when the job has no on_failure emails.",
    )
    email_max_per_recipient_per_hour: int = Field(
        default=10, ge=0, le=10_000,
        description="Emails per recipient per clock hour; the rest go in one digest after the hour. 0: no cap.",
    )
    email_repeat_window_minutes: int = Field(
        default=60, ge=0, le=7 * 24 * 60,
        description="The same failure (fingerprint) of the same job within this window goes in the digest. 0: off.",
    )
    email_max_send_attempts: int = Field(
        default=8, ge=1, le=50, description="Sends tried (backoff up to an hour apart) before an email is marked failed."
    )

    # --- Logging ------------------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL."
    )

    # --- Validation of single values ----------------------------------------------------------------
    # Every check below is per field, so pydantic reports all of them together. Cross-field checks are in
    # problems_for(), which load_settings() runs after these.

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Keyword arguments, then the environment (load_settings' mapping, else os.environ); no .env files.
        return (init_settings, _EnvironmentSource(settings_cls))

    _split = field_validator(
        "resize_allowed_spark_conf", "email_default_recipients", "email_escalation_recipients", mode="before"
    )(_split_commas)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("databricks_workspace_url", "azure_openai_endpoint", "feedback_url", "storage_queue_service_uri",
                     "storage_table_service_uri")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _http_url(value)

    @field_validator("key_vault_url", "acs_endpoint")
    @classmethod
    def _https_url(cls, value: str | None) -> str | None:
        # The Key Vault SDK refuses bearer tokens over http://, so a local fake must be HTTPS too.
        return _http_url(value, https_only=True)

    @field_validator("databricks_workspace_id", mode="before")
    @classmethod
    def _numeric_workspace_id(cls, value: object) -> object:
        return _workspace_id(value)

    @field_validator("databricks_workspaces")
    @classmethod
    def _workspaces_json(cls, value: str | None) -> str | None:
        if value is not None:
            _parse_workspaces(value)
        return value

    @field_validator("poll_schedule")
    @classmethod
    def _ncrontab(cls, value: str) -> str:
        if not (value.startswith("%") and value.endswith("%")) and len(value.split()) != 6:
            raise ValueError("must be an NCRONTAB expression with six fields, seconds first (e.g. 0 */5 * * * *)")
        return value

    @field_validator("resize_node_ladders")
    @classmethod
    def _ladders(cls, value: str) -> str:
        families = [f for f in value.split(";") if f.strip()]
        if not families or any(not [n for n in f.split(",") if n.strip()] for f in families):
            raise ValueError("must list node types: ',' between sizes, ';' between families")
        return value

    @field_validator("email_default_recipients", "email_escalation_recipients")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        bad = [a for a in value if "@" not in a]
        if bad:
            raise ValueError(f"not an email address: {', '.join(bad)}")
        return value

    @field_validator("*", mode="before")
    @classmethod
    def _no_unresolved_key_vault_reference(cls, value: object, info: ValidationInfo) -> object:
        # Defined last so it runs before the other "before" validators (pydantic runs them last-defined first).
        # App Service hands the literal "@Microsoft.KeyVault(...)" to the app when it cannot resolve a reference.
        if isinstance(value, str) and value.strip().startswith(KEY_VAULT_REFERENCE_PREFIX):
            raise ValueError(f"unresolved Key Vault reference {value.strip()}: {KEY_VAULT_REFERENCE_FIX}")
        return value

    @model_validator(mode="after")
    def _identity_storage_uris(self) -> "Settings":
        # AzureWebJobsStorage__accountName alone stands for the public-cloud endpoints (as in the Functions host).
        if self.storage_account_name:
            self.storage_queue_service_uri = (
                self.storage_queue_service_uri or f"https://{self.storage_account_name}.queue.core.windows.net"
            )
            self.storage_table_service_uri = (
                self.storage_table_service_uri or f"https://{self.storage_account_name}.table.core.windows.net"
            )
        return self

    # --- Derived views ------------------------------------------------------------------------------
    @property
    def node_ladders(self) -> list[list[str]]:
        """The resize ladders, smallest node type first."""
        return [
            [n.strip() for n in family.split(",") if n.strip()]
            for family in self.resize_node_ladders.split(";")
            if family.strip()
        ]

    def workspaces(self) -> list[WorkspaceConfig]:
        """Every configured workspace: DATABRICKS_WORKSPACES entries, else the single DATABRICKS_* one."""
        if self.databricks_workspaces:
            return _parse_workspaces(self.databricks_workspaces)
        if not self.databricks_workspace_url:
            return []
        auth = self.databricks_auth or ("pat" if self.databricks_pat_token else "entra")
        return [
            WorkspaceConfig(
                workspace_id=self.databricks_workspace_id,
                url=self.databricks_workspace_url,
                auth=auth,
                pat_token=self.databricks_pat_token,
                pat_secret_name=self.databricks_pat_secret_name if auth == "pat" else None,
            )
        ]

    # --- Cross-field checks -------------------------------------------------------------------------
    def problems_for(self, feature: str) -> list[SettingProblem]:
        """What `feature` (one of FEATURES) needs and does not have, each named by its environment name."""
        check = {
            "databricks": self._databricks_problems,
            "storage": self._storage_problems,
            "webhook": self._webhook_problems,
            "secrets": lambda: [],  # KEY_VAULT_URL and the secret names are checked per value
            "llm": self._llm_problems,
            "email": self._email_problems,
        }.get(feature)
        if check is None:
            raise ValueError(f"unknown feature {feature!r}; one of {', '.join(FEATURES)}")
        return check()

    def problems(self, features: Collection[str] = FEATURES) -> list[SettingProblem]:
        """problems_for() of each feature."""
        return [problem for feature in features for problem in self.problems_for(feature)]

    def _databricks_problems(self) -> list[SettingProblem]:
        if self.databricks_workspaces:
            out = []
            if self.databricks_workspace_url or self.databricks_workspace_id:
                out.append(SettingProblem(
                    "DATABRICKS_WORKSPACES",
                    "set either DATABRICKS_WORKSPACES or DATABRICKS_WORKSPACE_URL / DATABRICKS_WORKSPACE_ID, not both",
                ))
            return out
        if not self.databricks_workspace_url:
            return [SettingProblem(
                "DATABRICKS_WORKSPACE_URL",
                "not set: the agent needs a Databricks workspace (or DATABRICKS_WORKSPACES for several)",
            )]
        return []

    def _storage_problems(self) -> list[SettingProblem]:
        if self.storage_connection_string:
            return []
        missing = [
            name for name, value in (
                ("AzureWebJobsStorage__queueServiceUri", self.storage_queue_service_uri),
                ("AzureWebJobsStorage__tableServiceUri", self.storage_table_service_uri),
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

    def _webhook_problems(self) -> list[SettingProblem]:
        if self.webhook_username and not self.webhook_password:
            return [SettingProblem("WEBHOOK_PASSWORD", "not set, but WEBHOOK_USERNAME is: set both or neither")]
        if self.webhook_password and not self.webhook_username:
            return [SettingProblem("WEBHOOK_USERNAME", "not set, but WEBHOOK_PASSWORD is: set both or neither")]
        return []

    def _llm_problems(self) -> list[SettingProblem]:
        if self.azure_openai_endpoint and not self.azure_openai_deployment:
            return [SettingProblem("AZURE_OPENAI_DEPLOYMENT", "not set, but AZURE_OPENAI_ENDPOINT is")]
        if self.azure_openai_deployment and not self.azure_openai_endpoint:
            return [SettingProblem("AZURE_OPENAI_ENDPOINT", "not set, but AZURE_OPENAI_DEPLOYMENT is")]
        return []

    def _email_problems(self) -> list[SettingProblem]:
        if not self.email_enabled:
            return []
        out = []
        if self.email_transport in ("smtp", "acs") and not self.email_sender:
            out.append(SettingProblem("EMAIL_SENDER", f"not set, but EMAIL_TRANSPORT={self.email_transport} needs it"))
        if self.email_transport == "smtp" and not self.email_smtp_host:
            out.append(SettingProblem("EMAIL_SMTP_HOST", "not set, but EMAIL_TRANSPORT=smtp needs it"))
        if self.email_transport == "acs" and not (
            self.acs_connection_string or self.acs_endpoint or self.acs_connection_string_secret_name
        ):
            out.append(SettingProblem(
                "ACS_ENDPOINT", "not set, nor ACS_CONNECTION_STRING or ACS_CONNECTION_STRING_SECRET_NAME, "
                "but EMAIL_TRANSPORT=acs needs one of them"
            ))
        if self.email_transport == "file" and not self.email_file_dir:
            out.append(SettingProblem("EMAIL_FILE_DIR", "not set, but EMAIL_TRANSPORT=file needs it"))
        return out

    # --- Secrets held in settings -------------------------------------------------------------------
    def secret_values(self) -> list[str]:
        """Every secret value held directly in the settings (to register with the log redaction)."""
        values = [
            getattr(self, name).get_secret_value()
            for name in type(self).model_fields
            if isinstance(getattr(self, name), SecretStr)
        ]
        values += [w.pat_token.get_secret_value() for w in self.workspaces() if w.pat_token is not None]
        return [v for v in values if v and v.lower() != "usedevelopmentstorage=true"]


def _parse_workspaces(raw: str) -> list[WorkspaceConfig]:
    """DATABRICKS_WORKSPACES as WorkspaceConfig objects; ValueError lists every problem of every entry."""
    try:
        items = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at character {exc.pos})") from exc
    if not isinstance(items, list) or not items:
        raise ValueError("must be a non-empty JSON list of workspaces")
    problems: list[str] = []
    workspaces: list[WorkspaceConfig] = []
    for i, item in enumerate(items):
        where = f"entry {i}"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be an object with workspace_id, url, auth and pat_secret_name")
            continue
        references = sorted(
            k for k, v in item.items() if isinstance(v, str) and v.startswith(KEY_VAULT_REFERENCE_PREFIX)
        )
        if references:
            problems.append(f"{where}: {', '.join(references)}: a Key Vault reference is not resolved inside JSON; "
                            "use pat_secret_name with KEY_VAULT_URL")
            continue
        try:
            workspace = WorkspaceConfig.model_validate(item)
        except ValidationError as exc:
            problems.extend(f"{where}: {_error_text(err)}" for err in exc.errors())
            continue
        if len(items) > 1 and workspace.workspace_id is None:
            problems.append(f"{where}: workspace_id is required when there are several workspaces")
        elif workspace.workspace_id is not None:
            try:
                workspace.workspace_id = _workspace_id(workspace.workspace_id)
            except ValueError as exc:
                problems.append(f"{where}: workspace_id {exc}")
        workspaces.append(workspace)
    ids = [w.workspace_id for w in workspaces if w.workspace_id is not None]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        problems.append(f"workspace_id {', '.join(duplicates)} appears more than once")
    if problems:
        raise ValueError("; ".join(problems))
    return workspaces


# --- Environment names ------------------------------------------------------------------------------

def env_name(field_name: str) -> str:
    """The environment (app setting) name of a field: its first alias, else its name in upper case."""
    field = Settings.model_fields[field_name]
    if isinstance(field.validation_alias, AliasChoices):
        return str(field.validation_alias.choices[0])
    return field_name.upper()


def _names_by_lower() -> dict[str, str]:
    """Every accepted environment name (lower case) -> the field it sets."""
    out: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        out[name.lower()] = name
        if isinstance(field.validation_alias, AliasChoices):
            out.update({str(choice).lower(): name for choice in field.validation_alias.choices})
    return out


def _error_text(err: Any) -> str:
    where = ".".join(str(p) for p in err["loc"])
    message = err["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _problem_from_error(err: Any) -> tuple[str, SettingProblem]:
    fields = _names_by_lower()
    loc = list(err["loc"])
    field = fields.get(str(loc[0]).lower(), str(loc[0])) if loc else "settings"
    setting = env_name(field) if field in Settings.model_fields else str(loc[0]).upper()
    detail = "".join(f"[{p}]" for p in loc[1:])
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] not in ("value_error",) and field in Settings.model_fields and not _is_secret(field):
        given = err.get("input")
        if isinstance(given, str):
            message += f" (got {given[:60]!r})"
    return field, SettingProblem(setting + detail, message)


def _is_secret(field_name: str) -> bool:
    annotation = str(Settings.model_fields[field_name].annotation)
    return "SecretStr" in annotation


def check_settings(
    env: Mapping[str, str] | None = None, *, require: Collection[str] = FEATURES
) -> tuple[Settings, list[SettingProblem]]:
    """The settings from `env` (default: os.environ) and every problem with them.

    The settings object is always built: a bad value is replaced by its default (and listed as a problem),
    so a half-filled configuration can still be inspected. `require` picks the features whose missing
    settings count as problems.
    """
    env = dict(os.environ if env is None else env)
    problems: list[SettingProblem] = []
    bad_fields: set[str] = set()
    token = _ENVIRONMENT.set(env)
    try:
        try:
            settings = Settings()
        except ValidationError as exc:
            for err in exc.errors():
                field, problem = _problem_from_error(err)
                bad_fields.add(field)
                problems.append(problem)
            known = _names_by_lower()
            _ENVIRONMENT.set({k: v for k, v in env.items() if known.get(k.lower()) not in bad_fields})
            try:
                settings = Settings()
            except ValidationError:  # pragma: no cover - each remaining value passed on its own above
                settings = Settings.model_construct()
    finally:
        _ENVIRONMENT.reset(token)
    # A reference in a setting the agent does not read is reported, but does not stop the agent.
    known = _names_by_lower()
    problems += [
        SettingProblem(key, f"unresolved Key Vault reference {value.strip()}: {KEY_VAULT_REFERENCE_FIX}", fatal=False)
        for key, value in sorted(env.items())
        if key.lower() not in known and isinstance(value, str) and value.strip().startswith(KEY_VAULT_REFERENCE_PREFIX)
    ]
    problems += [p for p in settings.problems(require) if not _already_reported(p, problems)]
    return settings, problems


# A missing setting is not reported when it, or the setting that stands in for it, was rejected already.
_STANDS_IN_FOR = {
    "databricks_workspace_url": ("databricks_workspaces",),
    "azurewebjobsstorage": ("azurewebjobsstorage__accountname", "azurewebjobsstorage__queueserviceuri",
                            "azurewebjobsstorage__tableserviceuri"),
}


def _already_reported(problem: SettingProblem, problems: list[SettingProblem]) -> bool:
    name = problem.setting.lower()
    related = {name, *_STANDS_IN_FOR.get(name, ())}
    return any(p.setting.split("[")[0].lower() in related for p in problems)


def load_settings(env: Mapping[str, str] | None = None, *, require: Collection[str] = FEATURES) -> Settings:
    """Build the settings from `env` (default: os.environ); raise ConfigError (InvalidSettings) listing every problem.

    Secret values held in the settings are registered with the log redaction.
    """
    settings, problems = check_settings(env, require=require)
    fatal = [p for p in problems if p.fatal]
    if fatal:
        raise InvalidSettings(fatal)
    from shared.redaction import register_secret

    for value in settings.secret_values():
        register_secret(value)
    return settings


# --- Documentation ----------------------------------------------------------------------------------

# The first field of each section, in declaration order (the table in docs/configuration.md follows it).
_SECTIONS = (
    ("databricks_workspace_url", "Databricks"),
    ("agent_mode", "Decisions and actions"),
    ("poll_schedule", "Timer (poller)"),
    ("webhook_username", "Webhook"),
    ("storage_connection_string", "Storage"),
    ("key_vault_url", "Secrets"),
    ("azure_openai_endpoint", "Azure OpenAI"),
    ("email_enabled", "Email"),
    ("log_level", "Logging"),
)


@dataclass(frozen=True)
class SettingInfo:
    """One row of the configuration table."""

    section: str
    name: str
    default: str
    description: str
    secret: bool


def describe_settings() -> list[SettingInfo]:
    """Every setting with its section, environment name, default and description, in declaration order."""
    starts = dict(_SECTIONS)
    section = _SECTIONS[0][1]
    rows = []
    for name, field in Settings.model_fields.items():
        section = starts.get(name, section)
        default = field.get_default(call_default_factory=True)
        if isinstance(default, list):
            shown = ",".join(default)
        elif isinstance(default, bool):
            shown = str(default).lower()
        else:
            shown = "" if default is None else str(default)
        rows.append(SettingInfo(section, env_name(name), shown, field.description or "", _is_secret(name)))
    return rows
