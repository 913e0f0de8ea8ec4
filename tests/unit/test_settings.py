"""Settings: one typed object from the environment, every problem listed at once by its app-setting name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.exceptions import ConfigError
from shared.redaction import redact
from shared.settings import (
    FEATURES,
    KEY_VAULT_REFERENCE_PREFIX,
    InvalidSettings,
    Settings,
    load_settings,
)
from shared.settings.check import check_settings
from shared.settings.docs import describe_settings, example_settings, settings_markdown

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = {
    "DATABRICKS_WORKSPACE_URL": "https://adb-1.2.azuredatabricks.net",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
}
REFERENCE = "@Microsoft.KeyVault(VaultName=kv-agent;SecretName=databricks-pat)"


def problems_of(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    return [str(p) for p in caught.value.problems]


def test_a_minimal_configuration_loads_with_defaults():
    settings = load_settings(MINIMAL)
    assert settings.max_retries == 3
    assert settings.agent_mode == "act"
    assert settings.databricks_workspace_url == "https://adb-1.2.azuredatabricks.net"


def test_every_problem_is_listed_in_one_message_by_its_env_name():
    env = {
        **MINIMAL,
        "MAX_RETRIES": "many",                       # malformed
        "RESIZE_MAX_WORKERS": "0",                   # out of range
        "KEY_VAULT_URL": "http://kv.vault.azure.net",  # malformed URL
        "AZURE_OPENAI_API_KEY": REFERENCE,           # unresolved reference
        "DATABRICKS_WORKSPACES": "[{",               # JSON problem
        "WEBHOOK_USERNAME": "databricks",            # missing its password
    }
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    message = str(caught.value)
    for name in ("MAX_RETRIES", "RESIZE_MAX_WORKERS", "KEY_VAULT_URL", "AZURE_OPENAI_API_KEY", "DATABRICKS_WORKSPACES",
                 "WEBHOOK_PASSWORD"):
        assert f"{name}:" in message
    assert "max_retries" not in message
    assert "6 problems" in message


def test_an_unresolved_key_vault_reference_does_not_hide_the_other_problems():
    problems = problems_of({**MINIMAL, "DATABRICKS_PAT_TOKEN": REFERENCE, "MAX_RETRIES": "11"})
    assert any(p.startswith("DATABRICKS_PAT_TOKEN: unresolved Key Vault reference " + REFERENCE) for p in problems)
    assert any(p.startswith("MAX_RETRIES: Input should be less than or equal to 10") for p in problems)


def test_an_unresolved_reference_says_what_to_check():
    (problem,) = problems_of({**MINIMAL, "WEBHOOK_USERNAME": "u", "WEBHOOK_PASSWORD": REFERENCE})
    assert "Key Vault Secrets User" in problem and "keyVaultReferenceIdentity" in problem


def test_an_unresolved_reference_in_a_list_setting_is_reported_as_such():
    (problem,) = problems_of({**MINIMAL, "EMAIL_DEFAULT_RECIPIENTS": REFERENCE})
    assert problem.startswith("EMAIL_DEFAULT_RECIPIENTS: unresolved Key Vault reference")


def test_an_unresolved_reference_in_a_setting_the_agent_does_not_read_is_reported_but_not_fatal():
    env = {**MINIMAL, "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET": "@Microsoft.KeyVault(SecretUri=https://kv/secrets/ai/)"}
    load_settings(env)  # starts
    _, problems = check_settings(env)
    assert [(p.setting, p.fatal) for p in problems] == [("MICROSOFT_PROVIDER_AUTHENTICATION_SECRET", False)]


def test_a_malformed_value_shows_what_was_given():
    (problem,) = problems_of({**MINIMAL, "AGENT_MODE": "yolo"})
    assert problem.startswith("AGENT_MODE: Input should be 'act' or 'observe'") and "(got 'yolo')" in problem


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"POLL_SCHEDULE": "*/5 * * * *"}, "POLL_SCHEDULE: must be an NCRONTAB expression with six fields"),
        ({"DATABRICKS_WORKSPACE_URL": "adb-1.azuredatabricks.net"}, "DATABRICKS_WORKSPACE_URL: must start with"),
        ({"DATABRICKS_WORKSPACE_ID": "prod"}, "DATABRICKS_WORKSPACE_ID: must be the numeric workspace id"),
        ({"DECISIONS_TABLE": "my-table"}, "DECISIONS_TABLE: String should match pattern"),
        ({"EMAIL_ESCALATION_RECIPIENTS": "oncall@example.com,oncall"},
         "EMAIL_ESCALATION_RECIPIENTS: not an email address: oncall"),
        ({"LLM_CONFIDENCE_THRESHOLD": "1.5"}, "LLM_CONFIDENCE_THRESHOLD: Input should be less than or equal to 1"),
        ({"DATABRICKS_PAT_SECRET_NAME": "my_pat"}, "DATABRICKS_PAT_SECRET_NAME: String should match pattern"),
        ({"RESIZE_NODE_LADDERS": ";;"}, "RESIZE_NODE_LADDERS: must list node types"),
        ({"AzureWebJobsStorage__queueServiceUri": "queue.core.windows.net"},
         "AzureWebJobsStorage__queueServiceUri: must start"),
    ],
)
def test_malformed_values_are_named(env, expected):
    problems = problems_of({**MINIMAL, **env})
    assert any(p.startswith(expected) for p in problems), problems


@pytest.mark.parametrize(
    ("workspaces", "expected"),
    [
        ("[{", "DATABRICKS_WORKSPACES: not JSON"),
        ('{"url": "https://a"}', "DATABRICKS_WORKSPACES: must be a non-empty JSON list"),
        ("[]", "DATABRICKS_WORKSPACES: must be a non-empty JSON list"),
        ('["https://a"]', "DATABRICKS_WORKSPACES: entry 0: must be an object"),
        ('[{"workspace_id": "1", "url": "ftp://a", "auth": "entra"}]',
         "DATABRICKS_WORKSPACES: entry 0: url: must start with https://"),
        ('[{"workspace_id": "1", "url": "https://a", "auth": "entra", "pat_secret": "x"}]',
         "DATABRICKS_WORKSPACES: entry 0: pat_secret: Extra inputs are not permitted"),
        ('[{"workspace_id": "1", "url": "https://a"}]',
         'DATABRICKS_WORKSPACES: entry 0: auth "pat" needs pat_secret_name'),
        ('[{"workspace_id": "1", "url": "https://a", "auth": "entra"}, {"url": "https://b", "auth": "entra"}]',
         "DATABRICKS_WORKSPACES: entry 1: workspace_id is required when there are several workspaces"),
        ('[{"workspace_id": "1", "url": "https://a", "auth": "entra"}, '
         '{"workspace_id": 1, "url": "https://b", "auth": "entra"}]',
         "DATABRICKS_WORKSPACES: workspace_id 1 appears more than once"),
        ('[{"workspace_id": "prod", "url": "https://a", "auth": "entra"}]',
         "DATABRICKS_WORKSPACES: entry 0: workspace_id must be the numeric workspace id"),
        ('[{"workspace_id": "1", "url": "https://a", "pat_token": "@Microsoft.KeyVault(VaultName=kv;SecretName=p)"}]',
         "DATABRICKS_WORKSPACES: entry 0: pat_token: a Key Vault reference is not resolved inside JSON"),
    ],
)
def test_workspace_list_problems_are_named(workspaces, expected):
    env = {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "DATABRICKS_WORKSPACES": workspaces}
    problems = problems_of(env)
    assert any(p.startswith(expected) for p in problems), problems
    # The list was given, so "no workspace configured" would only confuse.
    assert not any(p.startswith("DATABRICKS_WORKSPACE_URL") for p in problems)


def test_every_entry_of_the_workspace_list_is_checked():
    workspaces = json.dumps([
        {"workspace_id": "1", "url": "ftp://a", "auth": "entra"},
        {"workspace_id": "2", "url": "https://b"},
    ])
    (problem,) = problems_of({"AzureWebJobsStorage": "x", "DATABRICKS_WORKSPACES": workspaces})
    assert "entry 0: url" in problem and "entry 1: auth" in problem


def test_a_workspace_list_problem_never_shows_the_token():
    token = "dapi" + "ab12" * 8
    workspaces = json.dumps([{"workspace_id": "1", "url": "nope", "pat_token": token}])
    with pytest.raises(ConfigError) as caught:
        load_settings({"AzureWebJobsStorage": "x", "DATABRICKS_WORKSPACES": workspaces})
    assert token not in str(caught.value)


def test_several_workspaces_are_read_from_the_list():
    workspaces = json.dumps([
        {"workspace_id": 111, "url": "https://a/", "auth": "pat", "pat_secret_name": "pat-a"},
        {"workspace_id": "222", "url": "https://b", "auth": "entra"},
    ])
    settings = load_settings({"AzureWebJobsStorage": "x", "DATABRICKS_WORKSPACES": workspaces})
    assert [(w.workspace_id, w.url, w.auth, w.pat_secret_name) for w in settings.workspaces()] == [
        ("111", "https://a", "pat", "pat-a"),
        ("222", "https://b", "entra", None),
    ]


def test_the_list_and_the_single_workspace_settings_together_are_a_problem():
    workspaces = json.dumps([{"workspace_id": "1", "url": "https://a", "auth": "entra"}])
    (problem,) = problems_of({**MINIMAL, "DATABRICKS_WORKSPACES": workspaces})
    assert problem.startswith("DATABRICKS_WORKSPACES: set either DATABRICKS_WORKSPACES or DATABRICKS_WORKSPACE_URL")


def test_the_single_workspace_reads_its_pat_from_the_named_secret_when_no_token_is_given():
    settings = load_settings({**MINIMAL, "DATABRICKS_AUTH": "pat", "DATABRICKS_PAT_SECRET_NAME": "pat-prod"})
    (workspace,) = settings.workspaces()
    assert (workspace.auth, workspace.pat_token, workspace.pat_secret_name) == ("pat", None, "pat-prod")


def test_the_single_workspace_uses_entra_without_a_token():
    (workspace,) = load_settings(MINIMAL).workspaces()
    assert (workspace.auth, workspace.pat_secret_name) == ("entra", None)


def test_the_single_workspace_uses_its_token_when_given():
    settings = load_settings({**MINIMAL, "DATABRICKS_PAT_TOKEN": "dapi-x", "DATABRICKS_WORKSPACE_ID": "0042"})
    (workspace,) = settings.workspaces()
    assert (workspace.auth, workspace.pat_token.get_secret_value(), workspace.workspace_id) == ("pat", "dapi-x", "42")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"AzureWebJobsStorage": "x"}, "DATABRICKS_WORKSPACE_URL: not set"),
        ({"DATABRICKS_WORKSPACE_URL": "https://a"}, "AzureWebJobsStorage: not set"),
        ({**MINIMAL, "WEBHOOK_PASSWORD": "pw-123456"}, "WEBHOOK_USERNAME: not set, but WEBHOOK_PASSWORD is"),
        ({**MINIMAL, "AZURE_OPENAI_ENDPOINT": "https://oai"},
         "AZURE_OPENAI_DEPLOYMENT: not set, but AZURE_OPENAI_ENDPOINT is"),
        ({**MINIMAL, "EMAIL_ENABLED": "true"}, "EMAIL_SMTP_HOST: not set, but EMAIL_TRANSPORT=smtp needs it"),
        ({**MINIMAL, "EMAIL_ENABLED": "true", "EMAIL_TRANSPORT": "acs", "EMAIL_SENDER": "a@b.c"},
         "ACS_ENDPOINT: not set"),
        ({**MINIMAL, "EMAIL_ENABLED": "true", "EMAIL_TRANSPORT": "file"}, "EMAIL_FILE_DIR: not set"),
        ({"DATABRICKS_WORKSPACE_URL": "https://a", "AzureWebJobsStorage__queueServiceUri": "https://q"},
         "AzureWebJobsStorage__tableServiceUri: not set"),
    ],
)
def test_settings_a_feature_needs_are_reported_missing(env, expected):
    assert any(p.startswith(expected) for p in problems_of(env))


def test_identity_storage_from_the_account_name():
    settings = load_settings({"DATABRICKS_WORKSPACE_URL": "https://a", "AzureWebJobsStorage__accountName": "stagent"})
    assert settings.storage_queue_service_uri == "https://stagent.queue.core.windows.net"
    assert settings.storage_table_service_uri == "https://stagent.table.core.windows.net"


def test_empty_values_count_as_unset():
    settings = load_settings({**MINIMAL, "MAX_RETRIES": "", "KEY_VAULT_URL": "", "DATABRICKS_AUTH": ""})
    assert (settings.max_retries, settings.key_vault_url, settings.databricks_auth) == (3, None, None)


def test_names_are_case_insensitive():
    settings = load_settings({"databricks_workspace_url": "https://a", "AZUREWEBJOBSSTORAGE": "x", "Max_Retries": "5"})
    assert settings.max_retries == 5


def test_an_explicit_environment_ignores_the_process_environment(monkeypatch):
    monkeypatch.setenv("MAX_RETRIES", "not-a-number")
    monkeypatch.setenv("KEY_VAULT_URL", "https://elsewhere.vault.azure.net")
    settings = load_settings(MINIMAL)
    assert (settings.max_retries, settings.key_vault_url) == (3, None)


def test_the_process_environment_is_read_by_default(monkeypatch):
    for key, value in {**MINIMAL, "MAX_RETRIES": "7"}.items():
        monkeypatch.setenv(key, value)
    assert load_settings().max_retries == 7


def test_check_settings_replaces_bad_values_by_defaults_so_a_half_filled_config_can_be_inspected():
    settings, problems = check_settings({"MAX_RETRIES": "x", "AGENT_MODE": "observe"})
    assert (settings.max_retries, settings.agent_mode) == (3, "observe")
    assert {p.setting for p in problems} == {"MAX_RETRIES", "DATABRICKS_WORKSPACE_URL", "AzureWebJobsStorage"}


def test_required_features_can_be_narrowed():
    settings = load_settings({"EMAIL_ENABLED": "true", "EMAIL_TRANSPORT": "table"}, require=("email",))
    assert settings.email_transport == "table"


def test_problems_for_an_unknown_feature_is_an_error():
    with pytest.raises(ValueError, match="unknown feature"):
        Settings().problems_for("coffee")


def test_problems_for_each_feature_is_empty_for_a_complete_configuration():
    settings = load_settings({**MINIMAL, "WEBHOOK_USERNAME": "u", "WEBHOOK_PASSWORD": "p-123456"})
    assert all(settings.problems_for(feature) == [] for feature in FEATURES)


def test_secret_values_in_the_settings_are_masked_in_logs_once_loaded():
    token = "dapi-settings-" + "9" * 20
    load_settings({**MINIMAL, "DATABRICKS_PAT_TOKEN": token})
    assert token not in redact(f"header Authorization: {token}")


def test_invalid_settings_is_a_config_error_listing_problems():
    with pytest.raises(InvalidSettings) as caught:
        load_settings({})
    assert isinstance(caught.value, ConfigError)
    assert "invalid settings (2 problems)" in str(caught.value)


# --- the documentation is generated from the fields, and checked against them -----------------------

def test_every_setting_has_a_description():
    assert [info.name for info in describe_settings() if not info.description.strip()] == []


def test_the_docs_table_matches_the_settings():
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    start, end = "<!-- settings-table:start -->\n", "<!-- settings-table:end -->"
    table = text[text.index(start) + len(start):text.index(end)]
    assert table == settings_markdown(), (
        "docs/configuration.md is out of date: paste `python -m shared doctor --list-settings` between the markers"
    )


def test_the_example_local_settings_match_the_settings():
    assert (ROOT / "local.settings.json.example").read_text(encoding="utf-8") == example_settings(), (
        "regenerate: python -m shared doctor --example-settings > local.settings.json.example"
    )


def test_the_example_local_settings_describe_every_setting_in_the_functions_format():
    document = json.loads((ROOT / "local.settings.json.example").read_text(encoding="utf-8"))
    assert document["IsEncrypted"] is False
    assert all(isinstance(v, str) for v in document["Values"].values())  # the host wants strings only
    names = {info.name for info in describe_settings()}
    assert names <= set(document["_comments"])
    assert all(document["_comments"][name] for name in names)
    assert document["Values"]["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"


def test_the_example_local_settings_only_lack_a_workspace():
    document = json.loads((ROOT / "local.settings.json.example").read_text(encoding="utf-8"))
    _, problems = check_settings(document["Values"])
    assert [p.setting for p in problems] == ["DATABRICKS_WORKSPACE_URL"]


def test_no_example_value_is_an_unresolved_reference():
    document = json.loads((ROOT / "local.settings.json.example").read_text(encoding="utf-8"))
    assert not any(v.startswith(KEY_VAULT_REFERENCE_PREFIX) for v in document["Values"].values())
