"""Several workspaces: the webhook's workspace_id picks the workspace and its credentials."""

from __future__ import annotations

import json

import pytest

from shared.exceptions import BadRequest, ConfigError, SecretError, TransientError
from shared.secrets import (
    EnvSecretProvider,
    KeyVaultSecretProvider,
    MemorySecretProvider,
    SecretNotFound,
    build_secret_provider,
    resolve_secret,
)
from shared.settings import WorkspaceConfig, load_settings
from shared.workspaces import resolve_workspace, workspace_pat

STORAGE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}
TWO_WORKSPACES = json.dumps([
    {"workspace_id": "1111", "url": "https://adb-1111.1.azuredatabricks.net", "auth": "pat",
     "pat_secret_name": "pat-1111"},
    {"workspace_id": "2222", "url": "https://adb-2222.2.azuredatabricks.net", "auth": "entra"},
])


def single(**extra: str):
    return load_settings({**STORAGE, "DATABRICKS_WORKSPACE_URL": "https://adb-1.azuredatabricks.net", **extra})


def several():
    return load_settings({**STORAGE, "DATABRICKS_WORKSPACES": TWO_WORKSPACES})


@pytest.mark.parametrize("workspace_id", [None, "1234", 98765])
def test_a_single_workspace_without_an_id_accepts_any(workspace_id):
    assert resolve_workspace(single(), workspace_id).url == "https://adb-1.azuredatabricks.net"


@pytest.mark.parametrize("workspace_id", ["42", 42, " 42 ", None])
def test_a_single_workspace_with_an_id_accepts_it(workspace_id):
    assert resolve_workspace(single(DATABRICKS_WORKSPACE_ID="42"), workspace_id).workspace_id == "42"


def test_a_single_workspace_with_an_id_rejects_another_with_a_4xx_naming_the_field():
    with pytest.raises(BadRequest) as caught:
        resolve_workspace(single(DATABRICKS_WORKSPACE_ID="42"), "43")
    assert caught.value.field == "workspace_id"
    assert "unknown workspace_id 43" in str(caught.value)


@pytest.mark.parametrize(("workspace_id", "url"), [
    ("1111", "https://adb-1111.1.azuredatabricks.net"),
    (2222, "https://adb-2222.2.azuredatabricks.net"),
])
def test_the_webhook_workspace_id_picks_the_workspace(workspace_id, url):
    assert resolve_workspace(several(), workspace_id).url == url


def test_an_unknown_workspace_id_is_rejected_without_naming_the_served_ones():
    with pytest.raises(BadRequest) as caught:
        resolve_workspace(several(), "3333")
    assert caught.value.field == "workspace_id"
    assert "3333" in str(caught.value)
    assert "1111" not in str(caught.value) and "2222" not in str(caught.value)


def test_several_workspaces_need_the_id():
    with pytest.raises(BadRequest, match="workspace_id is required"):
        resolve_workspace(several(), None)


def test_no_workspace_configured_is_a_config_error():
    settings = load_settings(STORAGE, require=("storage",))
    with pytest.raises(ConfigError, match="no Databricks workspace configured"):
        resolve_workspace(settings, "1")


def test_the_pat_comes_from_the_workspace_secret():
    workspace = resolve_workspace(several(), "1111")
    assert workspace_pat(workspace, MemorySecretProvider({"pat-1111": "dapi-one"})) == "dapi-one"


def test_an_entra_workspace_has_no_pat():
    workspace = resolve_workspace(several(), "2222")
    assert workspace_pat(workspace, MemorySecretProvider()) is None


def test_a_pat_given_directly_is_used_without_reading_secrets():
    workspace = resolve_workspace(single(DATABRICKS_PAT_TOKEN="dapi-direct"), None)
    assert workspace_pat(workspace, MemorySecretProvider()) == "dapi-direct"


def test_a_missing_pat_secret_is_a_transient_secret_error_naming_it():
    workspace = resolve_workspace(several(), "1111")
    with pytest.raises(SecretError) as caught:
        workspace_pat(workspace, MemorySecretProvider())
    assert isinstance(caught.value, TransientError)  # the queue message is retried, not lost
    assert "'pat-1111'" in str(caught.value)


def test_the_single_workspace_pat_is_read_from_the_environment_locally():
    settings = single(DATABRICKS_AUTH="pat")
    workspace = resolve_workspace(settings, None)
    provider = build_secret_provider(settings, env={"DATABRICKS_PAT": "dapi-from-env"})
    assert isinstance(provider, EnvSecretProvider)
    assert workspace_pat(workspace, provider) == "dapi-from-env"


def test_the_environment_provider_also_accepts_the_exact_name():
    assert EnvSecretProvider({"pat-1111": "dapi-exact"}).get("pat-1111") == "dapi-exact"


def test_the_environment_provider_says_which_variable_to_set():
    with pytest.raises(SecretNotFound) as caught:
        EnvSecretProvider({}).get("databricks-pat")
    assert "set DATABRICKS_PAT" in str(caught.value)
    assert caught.value.secret_name == "databricks-pat"


def test_a_secret_holding_an_unresolved_reference_is_reported_as_such():
    provider = EnvSecretProvider({"DATABRICKS_PAT": "@Microsoft.KeyVault(VaultName=kv;SecretName=databricks-pat)"})
    with pytest.raises(SecretError, match="unresolved Key Vault reference"):
        provider.get("databricks-pat")


def test_key_vault_is_used_when_its_url_is_set():
    settings = single(KEY_VAULT_URL="https://kv-agent.vault.azure.net/", AZURE_CLIENT_ID="0000-client")
    provider = build_secret_provider(settings)
    assert isinstance(provider, KeyVaultSecretProvider)
    assert provider.source == "Key Vault https://kv-agent.vault.azure.net"


def test_a_secret_setting_given_directly_wins_over_its_secret():
    settings = single(AZURE_OPENAI_API_KEY="key-direct-123")
    secrets = MemorySecretProvider({"azure-openai-api-key": "other"})
    assert resolve_secret(settings, secrets, "azure_openai_api_key") == "key-direct-123"


def test_a_secret_setting_falls_back_to_its_named_secret_or_none():
    settings = single()
    secrets = MemorySecretProvider({"azure-openai-api-key": "k-1"})
    assert resolve_secret(settings, secrets, "azure_openai_api_key") == "k-1"
    assert resolve_secret(settings, MemorySecretProvider(), "azure_openai_api_key") is None


def test_a_required_secret_setting_raises_when_nowhere():
    with pytest.raises(SecretError):
        resolve_secret(single(), MemorySecretProvider(), "databricks_pat_token", required=True)


def test_workspace_config_normalises_numeric_ids():
    assert WorkspaceConfig(workspace_id=123, url="https://a/", auth="entra").workspace_id == "123"
