"""The agent's settings: one typed object read from the environment (app settings / local.settings.json).

Names keep the original design's where they exist (DATABRICKS_WORKSPACE_URL, MAX_RETRIES, EMAIL_* ...).
`load_settings()` validates everything at once and raises one ConfigError listing every problem.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.exceptions import ConfigError

KEY_VAULT_REFERENCE_PREFIX = "@Microsoft.KeyVault("

CommaList = Annotated[list[str], NoDecode]


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class WorkspaceConfig(BaseModel):
    """One Databricks workspace the agent serves."""

    workspace_id: str | None = Field(
        default=None, description="The webhook's workspace_id; None accepts any (single-workspace setups)."
    )
    url: str = Field(description="https://adb-<id>.<n>.azuredatabricks.net")
    auth: Literal["pat", "entra"] = "pat"
    pat_token: SecretStr | None = Field(default=None, description="A PAT given directly (local runs).")
    pat_secret_name: str | None = Field(default=None, description="Name of the Key Vault secret holding the PAT.")

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (http:// only for a local simulator)")
        return value.rstrip("/")


class Settings(BaseSettings):
    """Every setting the app reads. Field docs double as the README's configuration table."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", populate_by_name=True)

    # --- Databricks ---------------------------------------------------------------------------------
    databricks_workspace_url: str | None = Field(default=None, description="Workspace URL (single workspace).")
    databricks_pat_token: SecretStr | None = Field(default=None, description="Personal access token; omit for Entra.")
    databricks_auth: Literal["pat", "entra"] | None = Field(
        default=None, description="pat or entra (managed identity / service principal); default: pat if a token is set."
    )
    databricks_workspace_id: str | None = Field(
        default=None, description="Workspace id the webhook must carry; unset accepts any."
    )
    databricks_workspaces: str | None = Field(
        default=None,
        description="JSON list of workspaces for a multi-workspace agent: "
        '[{"workspace_id": "...", "url": "...", "auth": "pat", "pat_secret_name": "..."}].',
    )
    databricks_http_timeout_seconds: float = Field(default=30.0, gt=0, le=300, description="Timeout of each Jobs API call.")
    azure_client_id: str | None = Field(
        default=None, description="Client id of the user-assigned managed identity (Entra auth, Key Vault, storage)."
    )

    # --- Decisions and actions ----------------------------------------------------------------------
    agent_mode: Literal["act", "observe"] = Field(
        default="act", description="observe: decide, record and notify, but change nothing in Databricks."
    )
    max_retries: int = Field(default=3, ge=0, le=10, description="Agent attempts per chain before it escalates.")
    resize_node_ladders: str = Field(
        default=(
            "Standard_DS3_v2,Standard_DS4_v2,Standard_DS5_v2;"
            "Standard_D4ds_v5,Standard_D8ds_v5,Standard_D16ds_v5,Standard_D32ds_v5;"
            "Standard_E4ds_v5,Standard_E8ds_v5,Standard_E16ds_v5,Standard_E32ds_v5"
        ),
        description="Node-type ladders for a resize: ';' between families, ',' between sizes, smallest first.",
    )
    resize_max_workers: int = Field(default=16, ge=1, le=1000, description="Upper bound on workers after a resize.")
    resize_allowed_spark_conf: CommaList = Field(
        default_factory=lambda: ["spark.sql.autoBroadcastJoinThreshold", "spark.sql.shuffle.partitions"],
        description="spark_conf keys a resize (or the LLM) may change.",
    )
    resize_revert: bool = Field(default=True, description="Revert a resized job cluster once its rerun has ended.")

    # --- Timer (poller) -----------------------------------------------------------------------------
    poll_schedule: str = Field(default="0 */5 * * * *", description="NCRONTAB schedule of the poller.")
    poll_lookback_minutes: int = Field(default=60, ge=1, le=60 * 24 * 7, description="First poll: how far back.")
    poll_overlap_minutes: int = Field(default=10, ge=0, le=24 * 60, description="Re-read window before the checkpoint.")
    defer_seconds: int = Field(default=60, ge=1, le=3600, description="Delay before a deferred event is looked at again.")
    claim_lease_seconds: int = Field(default=600, ge=30, le=86400, description="After this a stuck claim can be taken over.")

    # --- Webhook ------------------------------------------------------------------------------------
    webhook_username: str | None = Field(default=None, description="Basic-auth user the notification destination sends.")
    webhook_password: SecretStr | None = Field(default=None, description="Basic-auth password (Key Vault reference).")

    # --- Storage ------------------------------------------------------------------------------------
    storage_connection_string: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("AzureWebJobsStorage", "STORAGE_CONNECTION_STRING"),
        description="Storage connection string (local: UseDevelopmentStorage=true). Unset in Azure: identity is used.",
    )
    storage_queue_service_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("AzureWebJobsStorage__queueServiceUri", "STORAGE_QUEUE_SERVICE_URI")
    )
    storage_table_service_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("AzureWebJobsStorage__tableServiceUri", "STORAGE_TABLE_SERVICE_URI")
    )
    decisions_table: str = Field(default="agentdecisions", pattern=r"^[A-Za-z][A-Za-z0-9]{2,62}$")
    state_table: str = Field(default="agentstate", pattern=r"^[A-Za-z][A-Za-z0-9]{2,62}$")
    outbox_table: str = Field(default="agentoutbox", pattern=r"^[A-Za-z][A-Za-z0-9]{2,62}$")

    # --- Secrets ------------------------------------------------------------------------------------
    key_vault_url: str | None = Field(default=None, description="https://<vault>.vault.azure.net; unset: env only.")
    secret_cache_seconds: int = Field(default=300, ge=0, le=86400)

    # --- Azure OpenAI -------------------------------------------------------------------------------
    azure_openai_endpoint: str | None = Field(default=None, description="https://<resource>.openai.azure.com")
    azure_openai_api_key: SecretStr | None = Field(default=None, description="API key; omit to use Entra ID.")
    azure_openai_deployment: str | None = Field(default=None, description="Chat model deployment name.")
    azure_openai_model: str | None = Field(default=None, description="Model name (for the cache key and prices).")
    azure_openai_api_version: str = Field(default="2024-10-21")
    llm_confidence_threshold: float = Field(default=0.75, ge=0, le=1, description="Ask the LLM below this confidence.")
    llm_timeout_seconds: float = Field(default=20.0, gt=0, le=120)

    # --- Email --------------------------------------------------------------------------------------
    email_enabled: bool = Field(default=False, description="Send email; off: notifications are only recorded.")
    email_transport: Literal["smtp", "acs", "file", "table"] = Field(default="smtp")
    email_sender: str | None = Field(default=None, description="From address.")
    email_password: SecretStr | None = Field(default=None, description="SMTP password.")
    email_smtp_host: str | None = None
    email_smtp_port: int = Field(default=587, ge=1, le=65535)
    email_smtp_username: str | None = Field(default=None, description="Defaults to EMAIL_SENDER.")
    email_smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    acs_connection_string: SecretStr | None = None
    acs_endpoint: str | None = None
    email_default_recipients: CommaList = Field(default_factory=list)
    email_escalation_recipients: CommaList = Field(default_factory=list)
    email_file_dir: str | None = Field(default=None, description="EMAIL_TRANSPORT=file: where .eml/.html files go.")
    feedback_url: str | None = Field(default=None, description="Link in emails where a reader rates the decision.")

    # --- Logging ------------------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    _split = field_validator(
        "resize_allowed_spark_conf", "email_default_recipients", "email_escalation_recipients", mode="before"
    )(_split_commas)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _no_unresolved_key_vault_references(cls, data: object) -> object:
        # App Service hands the literal "@Microsoft.KeyVault(...)" to the app when it cannot resolve a reference.
        if isinstance(data, dict):
            bad = sorted(k for k, v in data.items() if isinstance(v, str) and v.startswith(KEY_VAULT_REFERENCE_PREFIX))
            if bad:
                raise ValueError(
                    "unresolved Key Vault reference in " + ", ".join(bad)
                    + ": App Service could not read the secret (check the identity's Key Vault Secrets User role"
                    " and keyVaultReferenceIdentity)"
                )
        return data

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
            return [WorkspaceConfig.model_validate(w) for w in json.loads(self.databricks_workspaces)]
        if not self.databricks_workspace_url:
            return []
        auth = self.databricks_auth or ("pat" if self.databricks_pat_token else "entra")
        return [
            WorkspaceConfig(
                workspace_id=self.databricks_workspace_id,
                url=self.databricks_workspace_url,
                auth=auth,
                pat_token=self.databricks_pat_token,
            )
        ]

    @model_validator(mode="after")
    def _workspaces_parse(self) -> "Settings":
        if self.databricks_workspaces:
            try:
                raw = json.loads(self.databricks_workspaces)
            except json.JSONDecodeError as exc:
                raise ValueError(f"DATABRICKS_WORKSPACES is not JSON: {exc.msg}") from exc
            if not isinstance(raw, list):
                raise ValueError("DATABRICKS_WORKSPACES must be a JSON list")
            for i, item in enumerate(raw):
                try:
                    WorkspaceConfig.model_validate(item)
                except ValidationError as exc:
                    raise ValueError(f"DATABRICKS_WORKSPACES[{i}]: {_describe(exc)}") from exc
        return self


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        parts.append(f"{where.upper()}: {err['msg']}")
    return "; ".join(parts)


def _by_field_name(env: dict[str, str]) -> dict[str, str]:
    """Map environment-style names (any case, aliases included) to field names, as the env source does."""
    lowered = {k.lower(): v for k, v in env.items()}
    out: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        candidates = [name]
        if isinstance(field.validation_alias, AliasChoices):
            candidates += [str(c) for c in field.validation_alias.choices]
        for candidate in candidates:
            if candidate.lower() in lowered:
                out[name] = lowered[candidate.lower()]
                break
    # Unresolved Key Vault references are checked on every value, known field or not.
    out.update({k: v for k, v in env.items() if v.startswith(KEY_VAULT_REFERENCE_PREFIX)})
    return out


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Build the settings from `env` (default: os.environ); raise ConfigError listing every problem."""
    try:
        if env is None:
            return Settings()
        return Settings.model_validate(_by_field_name(env))
    except ValidationError as exc:
        raise ConfigError("invalid settings: " + _describe(exc)) from exc
