"""The Databricks workspaces the settings configure: DATABRICKS_WORKSPACES, else the single DATABRICKS_* one.

Which of them a webhook is about is decided at run time, in shared/workspaces.py.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from shared.settings.values import KEY_VAULT_REFERENCE_PREFIX, SECRET_NAME_PATTERN, workspace_id

if TYPE_CHECKING:  # shared.settings imports this module
    from shared.settings.model import Settings


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
    webhook_username: str | None = Field(
        default=None, description="Basic-auth user name of this workspace's notification destination; its "
        "credential admits events for this workspace only (else WEBHOOK_USERNAME / WEBHOOK_PASSWORD apply).",
    )
    webhook_password_secret_name: str | None = Field(
        default=None, description="Name of the secret holding that destination's password (Key Vault, or the "
        "environment locally).",
    )
    webhook_password: SecretStr | None = Field(default=None, description="The password given directly (local runs).")

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

    @field_validator("pat_secret_name", "webhook_password_secret_name")
    @classmethod
    def _secret_name(cls, value: str | None) -> str | None:
        if value is not None and not re.match(SECRET_NAME_PATTERN, value):
            raise ValueError("must be a Key Vault secret name: 1-127 letters, digits and dashes")
        return value

    @model_validator(mode="after")
    def _webhook_credential_whole(self) -> WorkspaceConfig:
        has_password = self.webhook_password is not None or bool(self.webhook_password_secret_name)
        if bool(self.webhook_username) != has_password:
            raise ValueError("webhook_username and webhook_password_secret_name go together: set both or neither")
        return self

    @model_validator(mode="after")
    def _pat_has_a_source(self) -> WorkspaceConfig:
        if self.auth == "pat" and self.pat_token is None and not self.pat_secret_name:
            raise ValueError('auth "pat" needs pat_secret_name (or pat_token for local runs); or use auth "entra"')
        return self


def parse_workspaces(raw: str) -> list[WorkspaceConfig]:
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
                workspace.workspace_id = workspace_id(workspace.workspace_id)
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


def workspaces_json(value: str | None) -> str | None:
    """The DATABRICKS_WORKSPACES check: parsed once when the settings load, so every problem shows then."""
    if value is not None:
        parse_workspaces(value)
    return value


def configured_workspaces(settings: Settings) -> list[WorkspaceConfig]:
    """Every configured workspace: DATABRICKS_WORKSPACES entries, else the single DATABRICKS_* one."""
    if settings.databricks_workspaces:
        return parse_workspaces(settings.databricks_workspaces)
    if not settings.databricks_workspace_url:
        return []
    auth = settings.databricks_auth or ("pat" if settings.databricks_pat_token else "entra")
    return [
        WorkspaceConfig(
            workspace_id=settings.databricks_workspace_id,
            url=settings.databricks_workspace_url,
            auth=auth,
            pat_token=settings.databricks_pat_token,
            pat_secret_name=settings.databricks_pat_secret_name if auth == "pat" else None,
        )
    ]


def _error_text(err: Any) -> str:
    where = ".".join(str(p) for p in err["loc"])
    message = err["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message
