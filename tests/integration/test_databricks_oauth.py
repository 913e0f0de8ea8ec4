"""OAuth M2M end to end against the simulator's /oidc/v1/token: the agent's Jobs API client gets a token with
the service principal's secret, caches it across calls, asks again when it expires (on the workspace clock),
and never puts the secret in a log line, an error or the doctor's output."""

from __future__ import annotations

import io
import json
import logging
import time

import pytest

from shared.databricks.auth import OAuthM2MToken
from shared.databricks.client import DatabricksClient, RetryPolicy, build_jobs_api
from shared.databricks.errors import TokenUnavailable
from shared.doctor import READY, doctor
from shared.settings import load_settings

CLIENT_ID = "6f1d2c3b-sp-agent"
SECRET = "dose-m2m-secret-0123456789abcdef"


@pytest.fixture
def principal(sim):
    sim.add_service_principal(CLIENT_ID, SECRET)
    return sim


def workspace_for(url: str, secret: str = SECRET):
    settings = load_settings({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "DATABRICKS_HOST": url,
                              "DATABRICKS_CLIENT_ID": CLIENT_ID, "DATABRICKS_CLIENT_SECRET": secret})
    (workspace,) = settings.workspaces()
    assert workspace.auth == "oauth-m2m"
    return workspace


def list_runs(client) -> list:
    return list(client.list_runs(start_time_from=int(time.time() * 1000)))


def test_the_client_built_from_the_settings_signs_in_with_one_token_for_many_calls(principal, caplog):
    caplog.set_level(logging.DEBUG)
    client = build_jobs_api(workspace_for(principal.url), timeout=5, retry=RetryPolicy(retries=0))
    try:
        for _ in range(3):  # the simulator answers 401/403 to any token it did not issue
            assert list_runs(client) == []
    finally:
        client.close()
    assert len(principal.issued_tokens) == 1 and len(principal.requests_to("runs/list")) == 3
    assert SECRET not in caplog.text


def test_an_expiring_token_is_replaced_before_it_expires(principal):
    clock = lambda: principal.workspace.now_ms() / 1000  # noqa: E731 - the workspace's clock, which advance() moves
    tokens = OAuthM2MToken(principal.url, CLIENT_ID, SECRET, timeout=5, clock=clock)
    client = DatabricksClient(principal.url, tokens, timeout=5, retry=RetryPolicy(retries=0))
    try:
        list_runs(client)
        principal.advance(3600 - 299)  # inside the five-minute margin: fetched again before it expires
        list_runs(client)
        assert len(principal.issued_tokens) == 2
        principal.advance(3601)  # both expired now
        list_runs(client)
        assert len(principal.issued_tokens) == 3
    finally:
        client.close()


def test_a_token_refused_as_expired_is_dropped_and_the_call_made_once_more_with_a_new_one(principal):
    frozen = OAuthM2MToken(principal.url, CLIENT_ID, SECRET, timeout=5, clock=lambda: 0.0)  # never sees time pass
    stale = DatabricksClient(principal.url, frozen, timeout=5, retry=RetryPolicy(retries=0))
    try:
        list_runs(stale)
        principal.advance(3601)  # the simulator enforces expiry: the cached token is now refused with 401
        before = len(principal.requests_to("runs/list"))
        assert list_runs(stale) == []
        assert len(principal.requests_to("runs/list")) - before == 2  # refused once, then served
        assert len(principal.issued_tokens) == 2
    finally:
        stale.close()


def test_a_wrong_secret_is_refused_with_the_endpoints_reason_and_no_secret_shown(principal):
    client = build_jobs_api(workspace_for(principal.url, "wrong-secret-0123456789"), timeout=5,
                            retry=RetryPolicy(retries=0))
    with pytest.raises(TokenUnavailable) as caught:
        list_runs(client)
    assert "Client authentication failed" in str(caught.value) and "wrong-secret" not in str(caught.value)


@pytest.mark.parametrize("secret, ready", [(SECRET, True), ("wrong-secret-0123456789", False)])
def test_the_doctor_checks_oauth_m2m_and_shows_no_secret(principal, storage_connection_string, secret, ready):
    env = {"AzureWebJobsStorage": storage_connection_string, "DATABRICKS_HOST": principal.url,
           "DATABRICKS_CLIENT_ID": CLIENT_ID, "DATABRICKS_CLIENT_SECRET": secret}
    out = io.StringIO()
    doctor(env, out=out, as_json=True, timeout=5)
    rows = {r["name"]: r for r in json.loads(out.getvalue())}
    databricks = next(r for name, r in rows.items() if name.startswith("Databricks "))
    assert (databricks["status"] == READY) is ready, databricks
    assert "OAuth M2M, client " + CLIENT_ID in databricks["detail"]
    assert secret not in out.getvalue()


def test_the_secret_can_come_from_the_secret_store_by_name(principal):
    """Without DATABRICKS_CLIENT_SECRET the agent reads the secret DATABRICKS_CLIENT_SECRET_NAME names (Key Vault
    in Azure; the environment locally: databricks-client-secret is DATABRICKS_CLIENT_SECRET)."""
    from shared.secrets import EnvSecretProvider
    from shared.workspaces import workspace_client_secret

    settings = load_settings({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "DATABRICKS_HOST": principal.url,
                              "DATABRICKS_CLIENT_ID": CLIENT_ID})
    (workspace,) = settings.workspaces()
    secret = workspace_client_secret(workspace, EnvSecretProvider({"DATABRICKS_CLIENT_SECRET": SECRET}))
    client = build_jobs_api(workspace, timeout=5, client_secret=secret, retry=RetryPolicy(retries=0))
    try:
        assert list_runs(client) == []
    finally:
        client.close()
