"""OAuth M2M end to end: the agent's Jobs API client gets its token from the workspace's /oidc/v1/token over
loopback, uses it against the simulator, caches it across calls, fetches a new one once it expires, and never
puts the secret in a log line or in the doctor's output.

The token endpoint here is a small stand-in beside the simulator, to be replaced by the simulator's own once it
speaks /oidc/v1/token.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from shared.databricks.auth import OAuthM2MToken
from shared.databricks.client import DatabricksClient, RetryPolicy, build_jobs_api
from shared.databricks.errors import TokenUnavailable
from shared.doctor import READY, doctor
from shared.settings import load_settings

CLIENT_ID = "6f1d2c3b-sp-agent"
SECRET = "dose-m2m-secret-0123456789abcdef"


class TokenEndpoint:
    """POST /oidc/v1/token (client_credentials, HTTP Basic), issuing tokens the simulator accepts."""

    def __init__(self, sim, lifetime: int = 3600) -> None:
        self.sim, self.lifetime, self.issued = sim, lifetime, []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = parse_qs(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
                basic = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
                if self.path != "/oidc/v1/token" or body.get("grant_type") != ["client_credentials"]:
                    return self._answer(400, {"error": "invalid_request"})
                if self.headers.get("Authorization") != f"Basic {basic}" or body.get("scope") != ["all-apis"]:
                    return self._answer(401, {"error": "invalid_client", "error_description": "Client authentication failed"})
                token = f"oauth-{len(endpoint.issued) + 1}-{time.monotonic_ns()}"
                endpoint.issued.append(token)
                endpoint.sim.allow_token(token)
                return self._answer(200, {"access_token": token, "token_type": "Bearer",
                                          "expires_in": endpoint.lifetime, "scope": "all-apis"})

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def token_endpoint(sim):
    endpoint = TokenEndpoint(sim)
    yield endpoint
    endpoint.close()


def workspace_for(url: str, secret: str = SECRET):
    settings = load_settings({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "DATABRICKS_HOST": url,
                              "DATABRICKS_CLIENT_ID": CLIENT_ID, "DATABRICKS_CLIENT_SECRET": secret})
    return settings.workspaces()[0]


def test_the_client_authenticates_with_an_oauth_token_cached_across_calls(sim, token_endpoint, caplog):
    caplog.set_level(logging.DEBUG)
    # In Databricks the token endpoint and the Jobs API are one host; the stand-in has its own port.
    tokens = OAuthM2MToken(token_endpoint.url, CLIENT_ID, SECRET, timeout=5)
    client = DatabricksClient(sim.url, tokens, timeout=5, retry=RetryPolicy(retries=0))
    try:
        for _ in range(3):  # the simulator answers 401 to any token it was not told about
            assert list(client.list_runs(start_time_from=int(time.time() * 1000))) == []
    finally:
        client.close()
    assert len(token_endpoint.issued) == 1 and len(sim.requests_to("runs/list")) == 3
    assert SECRET not in caplog.text


def test_a_token_shorter_lived_than_the_refresh_margin_is_fetched_again_for_each_call(sim, token_endpoint):
    token_endpoint.lifetime = 60  # under the 300 s margin: always "about to expire"
    tokens = OAuthM2MToken(token_endpoint.url, CLIENT_ID, SECRET, timeout=5)
    client = DatabricksClient(sim.url, tokens, timeout=5, retry=RetryPolicy(retries=0))
    try:
        for _ in range(2):
            list(client.list_runs(start_time_from=int(time.time() * 1000)))
    finally:
        client.close()
    assert len(token_endpoint.issued) == 2


def test_a_wrong_secret_is_refused_with_the_endpoints_reason_and_no_secret_shown(token_endpoint):
    client = build_jobs_api(workspace_for(token_endpoint.url, "wrong-secret-0123456789"), timeout=5,
                            retry=RetryPolicy(retries=0))
    with pytest.raises(TokenUnavailable) as caught:
        client.list_runs(start_time_from=0).__next__()
    assert "Client authentication failed" in str(caught.value) and "wrong-secret" not in str(caught.value)


def test_the_doctor_checks_oauth_m2m_and_shows_no_secret(sim, token_endpoint, storage_connection_string):
    env = {"AzureWebJobsStorage": storage_connection_string, "DATABRICKS_HOST": token_endpoint.url,
           "DATABRICKS_CLIENT_ID": CLIENT_ID, "DATABRICKS_CLIENT_SECRET": "wrong-secret-0123456789"}
    out = io.StringIO()
    doctor(env, out=out, as_json=True, timeout=5)
    rows = {r["name"]: r for r in json.loads(out.getvalue())}
    databricks = next(r for name, r in rows.items() if name.startswith("Databricks "))
    assert databricks["status"] != READY
    assert "OAuth M2M, client " + CLIENT_ID in databricks["detail"]
    assert "Client authentication failed" in databricks["detail"]
    assert "wrong-secret-0123456789" not in out.getvalue()
