"""Which Databricks workspace a webhook (or queue message) is about, and its credentials.

One agent may serve several workspaces (DATABRICKS_WORKSPACES); the webhook's workspace_id picks one. A
single-workspace setup without DATABRICKS_WORKSPACE_ID accepts any id.
"""

from __future__ import annotations

from typing import Any

from shared.exceptions import BadRequest, ConfigError
from shared.secrets import SecretProvider
from shared.settings import Settings, WorkspaceConfig


def resolve_workspace(settings: Settings, workspace_id: str | int | None) -> WorkspaceConfig:
    """The configured workspace for this id. BadRequest(field='workspace_id') for an id this agent does not serve;
    ConfigError when no workspace is configured at all."""
    workspaces = settings.workspaces()
    if not workspaces:
        raise ConfigError("no Databricks workspace configured: set DATABRICKS_HOST (or DATABRICKS_WORKSPACES)")
    wanted = _normalise(workspace_id)
    if len(workspaces) == 1 and workspaces[0].workspace_id is None:
        return workspaces[0]
    if wanted is None:
        if len(workspaces) == 1:
            return workspaces[0]
        raise BadRequest("workspace_id is required: this agent serves several workspaces", field="workspace_id")
    for workspace in workspaces:
        if workspace.workspace_id == wanted:
            return workspace
    # The served ids are not listed: a sender of one workspace has no business learning the others'.
    raise BadRequest(f"unknown workspace_id {wanted}: not served by this agent", field="workspace_id")


# The key of a workspace configured without an id (single-workspace setups): decision keys, checkpoints.
DEFAULT_KEY = "default"


def workspace_key(workspace: WorkspaceConfig) -> str:
    """The workspace's key in the agent's records: its id, or DEFAULT_KEY when it has none."""
    return workspace.workspace_id or DEFAULT_KEY


def workspace_id_of(key: str) -> str | None:
    """The workspace id to resolve a record's key by (None for DEFAULT_KEY)."""
    return None if key == DEFAULT_KEY else key


def workspace_pat(workspace: WorkspaceConfig, secrets: SecretProvider) -> str | None:
    """The workspace's personal access token (given directly, or read from its secret); None for other auth.

    SecretError (retried) when the secret cannot be read.
    """
    return _credential(workspace, secrets, "pat", workspace.pat_token, workspace.pat_secret_name, "a PAT")


def workspace_client_secret(workspace: WorkspaceConfig, secrets: SecretProvider) -> str | None:
    """The workspace's OAuth M2M secret (given directly, or read from its secret); None for other auth.

    SecretError (retried) when the secret cannot be read.
    """
    return _credential(workspace, secrets, "oauth-m2m", workspace.client_secret, workspace.client_secret_name,
                       "OAuth M2M")


def _credential(workspace: WorkspaceConfig, secrets: SecretProvider, auth: str, given: Any, secret_name: str | None,
                what: str) -> str | None:
    if workspace.auth != auth:
        return None
    if given is not None and given.get_secret_value():
        return given.get_secret_value()
    if secret_name:
        return secrets.get(secret_name)
    raise ConfigError(f"workspace {workspace.workspace_id or workspace.url} uses {what} but names no secret for it")


def _normalise(workspace_id: str | int | None) -> str | None:
    # Webhook ids arrive as numbers or numeric strings; configured ids are kept as decimal strings.
    if workspace_id is None:
        return None
    text = str(workspace_id).strip()
    if not text:
        return None
    return str(int(text)) if text.isdigit() else text
