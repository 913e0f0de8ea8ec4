"""OAuth M2M for a Databricks service principal: the token request, its cache and refresh, and the secret kept out
of sight; and the unified-auth names (DATABRICKS_HOST, DATABRICKS_TOKEN, DATABRICKS_CLIENT_*) in the settings."""

from __future__ import annotations

import logging

import pytest
import requests

from shared.databricks.auth import OAuthM2MToken
from shared.databricks.errors import TokenUnavailable
from shared.exceptions import ConfigError
from shared.redaction import redact
from shared.settings import check_settings, load_settings

SECRET = "dose0123456789abcdef-oauth-secret"
STORAGE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}


class FakeResponse:
    def __init__(self, status: int, body: dict) -> None:
        self.status_code, self._body = status, body
        self.content = b"{}"

    def json(self) -> dict:
        return self._body


class FakeTokenEndpoint:
    """requests.post's shape; answers like <host>/oidc/v1/token, or fails when told to."""

    def __init__(self, lifetime: int = 3600) -> None:
        self.calls: list[dict] = []
        self.lifetime = lifetime
        self.fail: Exception | FakeResponse | None = None

    def post(self, url, *, auth, data, timeout, headers):
        self.calls.append({"url": url, "auth": auth, "data": data})
        if isinstance(self.fail, Exception):
            raise self.fail
        if self.fail is not None:
            return self.fail
        return FakeResponse(200, {"access_token": f"oauth-token-{len(self.calls)}", "token_type": "Bearer",
                                  "expires_in": self.lifetime})


def provider(endpoint: FakeTokenEndpoint, clock: list[float]) -> OAuthM2MToken:
    return OAuthM2MToken("https://adb-1.2.azuredatabricks.net/", "sp-client-id", SECRET, session=endpoint,
                         clock=lambda: clock[0])


def test_the_token_comes_from_the_workspace_oidc_endpoint_with_basic_client_credentials():
    endpoint = FakeTokenEndpoint()
    assert provider(endpoint, [0.0]).authorization() == "Bearer oauth-token-1"
    (call,) = endpoint.calls
    assert call["url"] == "https://adb-1.2.azuredatabricks.net/oidc/v1/token"
    assert call["auth"] == ("sp-client-id", SECRET)
    assert call["data"] == {"grant_type": "client_credentials", "scope": "all-apis"}


def test_the_token_is_cached_until_shortly_before_it_expires_then_fetched_again():
    endpoint, clock = FakeTokenEndpoint(lifetime=3600), [1000.0]
    tokens = provider(endpoint, clock)
    assert {tokens.authorization() for _ in range(5)} == {"Bearer oauth-token-1"}
    clock[0] += 3600 - 301  # still more than the 300 s margin left
    assert tokens.authorization() == "Bearer oauth-token-1"
    clock[0] += 2  # inside the margin
    assert tokens.authorization() == "Bearer oauth-token-2"
    assert len(endpoint.calls) == 2


def test_invalidate_forgets_the_token():
    endpoint = FakeTokenEndpoint()
    tokens = provider(endpoint, [0.0])
    tokens.authorization()
    tokens.invalidate()
    assert tokens.authorization() == "Bearer oauth-token-2"


def test_a_failed_early_refresh_keeps_the_valid_token_and_a_failed_first_fetch_is_transient():
    endpoint, clock = FakeTokenEndpoint(lifetime=3600), [0.0]
    tokens = provider(endpoint, clock)
    tokens.authorization()
    endpoint.fail = requests.ConnectionError("connection refused")
    clock[0] = 3500.0  # inside the margin, not expired
    assert tokens.authorization() == "Bearer oauth-token-1"
    clock[0] = 3601.0  # expired: no token to fall back on
    with pytest.raises(TokenUnavailable):
        tokens.authorization()


def test_a_refused_client_names_the_reason_and_never_the_secret(caplog):
    endpoint = FakeTokenEndpoint()
    endpoint.fail = FakeResponse(401, {"error": "invalid_client", "error_description": "Client authentication failed"})
    caplog.set_level(logging.DEBUG)
    tokens = provider(endpoint, [0.0])
    with pytest.raises(TokenUnavailable) as caught:
        tokens.authorization()
    assert "Client authentication failed" in str(caught.value)
    assert SECRET not in str(caught.value) + repr(tokens) + str(tokens) + caplog.text
    assert SECRET not in redact(f"leaked {SECRET} into a log line")  # registered with the log redaction


def test_an_empty_secret_is_a_configuration_error():
    with pytest.raises(ConfigError):
        OAuthM2MToken("https://h", "client", "  ")


# --- the settings: unified-auth names and their aliases ------------------------------------------------------

def test_databricks_host_and_token_are_read_and_the_scheme_is_added_when_left_out():
    settings = load_settings({**STORAGE, "DATABRICKS_HOST": "adb-1.2.azuredatabricks.net", "DATABRICKS_TOKEN": "dapi-x"})
    (workspace,) = settings.workspaces()
    assert workspace.url == "https://adb-1.2.azuredatabricks.net"
    assert (workspace.auth, workspace.pat_token.get_secret_value()) == ("pat", "dapi-x")


def test_the_original_names_stay_as_aliases():
    settings = load_settings({**STORAGE, "DATABRICKS_WORKSPACE_URL": "https://a", "DATABRICKS_PAT_TOKEN": "dapi-y"})
    (workspace,) = settings.workspaces()
    assert (workspace.url, workspace.auth, workspace.pat_token.get_secret_value()) == ("https://a", "pat", "dapi-y")


def test_a_setting_given_under_both_names_with_different_values_is_a_problem():
    _, problems = check_settings({**STORAGE, "DATABRICKS_HOST": "https://a", "DATABRICKS_WORKSPACE_URL": "https://b"})
    assert [str(p) for p in problems] == [
        "DATABRICKS_HOST: DATABRICKS_HOST and DATABRICKS_WORKSPACE_URL are both set, to different values: keep one"]
    _, same = check_settings({**STORAGE, "DATABRICKS_HOST": "https://a", "DATABRICKS_WORKSPACE_URL": "https://a"})
    assert same == []


def test_a_client_id_picks_oauth_m2m_with_its_secret_from_the_environment_or_key_vault():
    settings = load_settings({**STORAGE, "DATABRICKS_HOST": "https://a", "DATABRICKS_CLIENT_ID": "sp-1",
                              "DATABRICKS_CLIENT_SECRET": SECRET})
    (workspace,) = settings.workspaces()
    assert (workspace.auth, workspace.client_id, workspace.client_secret.get_secret_value()) == ("oauth-m2m", "sp-1",
                                                                                                  SECRET)
    assert SECRET in settings.secret_values()
    from_vault = load_settings({**STORAGE, "DATABRICKS_HOST": "https://a", "DATABRICKS_CLIENT_ID": "sp-1"})
    (workspace,) = from_vault.workspaces()
    assert (workspace.client_secret, workspace.client_secret_name) == (None, "databricks-client-secret")


def test_a_token_wins_over_client_credentials_as_in_unified_auth_unless_the_auth_type_says_otherwise():
    env = {**STORAGE, "DATABRICKS_HOST": "https://a", "DATABRICKS_TOKEN": "dapi-x", "DATABRICKS_CLIENT_ID": "sp-1"}
    assert load_settings(env).workspaces()[0].auth == "pat"
    assert load_settings({**env, "DATABRICKS_AUTH_TYPE": "oauth-m2m"}).workspaces()[0].auth == "oauth-m2m"
    assert load_settings({**env, "DATABRICKS_AUTH_TYPE": "azure-msi"}).workspaces()[0].auth == "entra"


@pytest.mark.parametrize("env, expected", [
    ({"DATABRICKS_AUTH": "oauth-m2m"}, "DATABRICKS_CLIENT_ID: not set, but DATABRICKS_AUTH=oauth-m2m needs"),
    ({"DATABRICKS_CLIENT_SECRET": SECRET}, "DATABRICKS_CLIENT_ID: not set, but DATABRICKS_CLIENT_SECRET is"),
    ({"DATABRICKS_AUTH_TYPE": "basic"}, "DATABRICKS_AUTH_TYPE: must be pat, oauth-m2m or entra"),
])
def test_incomplete_oauth_settings_are_named(env, expected):
    _, problems = check_settings({**STORAGE, "DATABRICKS_HOST": "https://a", **env})
    assert any(str(p).startswith(expected) for p in problems), problems
    assert SECRET not in " ".join(map(str, problems))


def test_the_doctor_reads_the_oauth_secret_from_key_vault_when_the_setting_holds_none():
    from shared.doctor.checks.key_vault import _needed_secrets

    settings = load_settings({**STORAGE, "DATABRICKS_HOST": "https://a", "DATABRICKS_CLIENT_ID": "sp-1",
                              "KEY_VAULT_URL": "https://kv.vault.azure.net"})
    assert ("databricks-client-secret", "OAuth secret of https://a", True) in _needed_secrets(settings)
    given = load_settings({**STORAGE, "DATABRICKS_HOST": "https://a", "DATABRICKS_CLIENT_ID": "sp-1",
                           "DATABRICKS_CLIENT_SECRET": SECRET, "KEY_VAULT_URL": "https://kv.vault.azure.net"})
    assert not any(name == "databricks-client-secret" for name, _, _ in _needed_secrets(given))
