"""The simulator's OAuth M2M token endpoint: client_credentials with Basic or form credentials, expiring
Bearer tokens the API accepts, OAuth error bodies; and databricks-sdk's own M2M flow against it."""

from __future__ import annotations

import pytest
import requests

CLIENT_ID, SECRET = "7c1e-sp-agent", "dose-sim-secret-0123456789"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def token(sim, data: dict, auth=(CLIENT_ID, SECRET)):
    return requests.post(f"{sim.url}/oidc/v1/token", data=data, auth=auth, timeout=5)


def runs_list(sim, access_token: str) -> int:
    return requests.get(f"{sim.url}/api/2.2/jobs/runs/list", headers={"Authorization": f"Bearer {access_token}"},
                        timeout=5).status_code


def test_basic_client_credentials_get_a_bearer_token_the_api_accepts(sim):
    sim.add_service_principal(CLIENT_ID, SECRET)

    answer = token(sim, {"grant_type": "client_credentials", "scope": "all-apis"})

    body = answer.json()
    assert answer.status_code == 200
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 3600, "all-apis")
    assert runs_list(sim, body["access_token"]) == 200
    assert sim.issued_tokens == [body["access_token"]]


def test_form_credentials_work_too(sim):
    sim.add_service_principal(CLIENT_ID, SECRET)

    answer = token(sim, {"grant_type": "client_credentials", "scope": "all-apis", "client_id": CLIENT_ID,
                         "client_secret": SECRET}, auth=None)

    assert answer.status_code == 200


def test_a_token_expires_on_the_workspace_clock(sim):
    sim.add_service_principal(CLIENT_ID, SECRET)
    sim.oauth_token_lifetime_s = 60
    access = token(sim, {"grant_type": "client_credentials", "scope": "all-apis"}).json()

    assert access["expires_in"] == 60
    assert runs_list(sim, access["access_token"]) == 200
    sim.advance(61)
    expired = requests.get(f"{sim.url}/api/2.2/jobs/runs/list",
                           headers={"Authorization": f"Bearer {access['access_token']}"}, timeout=5)
    assert (expired.status_code, expired.json()["error_code"]) == (401, "UNAUTHENTICATED")


@pytest.mark.parametrize(("data", "auth", "status", "error"), [
    ({"grant_type": "client_credentials", "scope": "all-apis"}, (CLIENT_ID, "wrong"), 401, "invalid_client"),
    ({"grant_type": "client_credentials", "scope": "all-apis"}, ("someone-else", SECRET), 401, "invalid_client"),
    ({"grant_type": "password", "scope": "all-apis"}, (CLIENT_ID, SECRET), 400, "unsupported_grant_type"),
    ({"grant_type": "client_credentials", "scope": "sql"}, (CLIENT_ID, SECRET), 400, "invalid_scope"),
])
def test_bad_requests_get_oauth_error_bodies_and_no_token(sim, data, auth, status, error):
    sim.add_service_principal(CLIENT_ID, SECRET)

    answer = token(sim, data, auth=auth)

    assert (answer.status_code, answer.json()["error"]) == (status, error)
    assert sim.issued_tokens == []


def test_a_json_body_is_refused(sim):
    sim.add_service_principal(CLIENT_ID, SECRET)

    answer = requests.post(f"{sim.url}/oidc/v1/token", json={"grant_type": "client_credentials"},
                           auth=(CLIENT_ID, SECRET), timeout=5)

    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_request")


def test_an_unknown_bearer_is_still_403(sim):
    assert runs_list(sim, "eyJnot-issued-here") == 403


def test_faults_reach_the_token_endpoint_too(sim):
    sim.add_service_principal(CLIENT_ID, SECRET)
    sim.inject("unavailable", path="/oidc/v1/token", times=1)

    first = token(sim, {"grant_type": "client_credentials", "scope": "all-apis"})
    second = token(sim, {"grant_type": "client_credentials", "scope": "all-apis"})

    assert (first.status_code, second.status_code) == (503, 200)
    assert sim.request_count("/oidc/v1/token", "POST") == 2


def test_databricks_sdk_oauth_m2m_flow_authenticates_against_the_simulator(sim):
    sdk = pytest.importorskip("databricks.sdk")
    sim.add_service_principal(CLIENT_ID, SECRET)
    job = sim.add_job("nb", [{"task_key": "t", "notebook_task": {"notebook_path": "/t"}}])

    client = sdk.WorkspaceClient(host=sim.url, client_id=CLIENT_ID, client_secret=SECRET, auth_type="oauth-m2m")
    got = client.jobs.get(job)

    assert got.settings.name == "nb"
    assert len(sim.issued_tokens) == 1


def test_the_service_principal_fixture_gets_a_token(sim, sim_service_principal):
    answer = token(sim, {"grant_type": "client_credentials", "scope": "all-apis"}, auth=sim_service_principal)

    assert answer.status_code == 200 and runs_list(sim, answer.json()["access_token"]) == 200
