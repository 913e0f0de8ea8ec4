"""The app's HTTP sessions read proxies from the environment once, when built, and never on a call: HTTPS_PROXY /
HTTP_PROXY still send requests through the proxy and NO_PROXY still sends a host's requests direct, shown
against a loopback forward proxy; and every client the app builds uses such a session."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from shared.http_session import ProxySession, bypasses


class _Recorder(BaseHTTPRequestHandler):
    """Answers every request with where it was addressed: a proxy gets the absolute URL, an origin the path."""

    seen: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server's name
        type(self).seen.append(self.path)
        body = self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def recorder():
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _clean_proxy_env(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
                 "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def test_requests_go_through_the_environments_proxy_and_no_proxy_hosts_go_direct(recorder, monkeypatch):
    _clean_proxy_env(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", recorder)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,.internal.contoso.example")
    session = ProxySession()

    # example.invalid does not resolve: only a proxy can answer it.
    assert session.get("http://adb-1.example.invalid/api/2.2/jobs/get", timeout=5).text == \
        "http://adb-1.example.invalid/api/2.2/jobs/get"
    assert session.get(f"{recorder}/direct", timeout=5).text == "/direct"  # NO_PROXY: straight to the origin
    assert _Recorder.seen == ["http://adb-1.example.invalid/api/2.2/jobs/get", "/direct"]


def test_the_environment_is_read_when_the_session_is_built_and_not_on_each_call(recorder, monkeypatch):
    _clean_proxy_env(monkeypatch)
    monkeypatch.setenv("http_proxy", recorder)
    session = ProxySession()
    monkeypatch.delenv("http_proxy")  # later changes are not seen: the settings were taken once

    def scan(*args, **kwargs):
        raise AssertionError("the environment was scanned during a call")

    monkeypatch.setattr(requests.utils, "get_environ_proxies", scan)
    monkeypatch.setattr(requests.sessions, "get_environ_proxies", scan)
    monkeypatch.setattr(requests.sessions, "get_netrc_auth", scan)
    with pytest.raises(AssertionError, match="scanned"):
        requests.Session().get(f"{recorder}/plain", timeout=5)  # what a plain session does on every call
    for _ in range(3):
        assert session.get("http://adb-2.example.invalid/x", timeout=5).text == "http://adb-2.example.invalid/x"
    assert ProxySession().proxies_for("http://adb-2.example.invalid/x") == {}


def test_no_proxy_is_matched_as_requests_matches_it():
    assert bypasses("adb-1.internal.contoso.example", 443, ".internal.contoso.example")
    assert bypasses("internal.contoso.example", None, "internal.contoso.example")
    assert bypasses("storage.local", 10002, "storage.local:10002") and not bypasses("storage.local", 443,
                                                                                     "storage.local:10002")
    assert bypasses("10.1.2.3", None, "10.0.0.0/8") and not bypasses("11.1.2.3", None, "10.0.0.0/8")
    assert bypasses("anything.example", None, "*")
    assert not bypasses("adb-1.azuredatabricks.net", 443, "contoso.example, 127.0.0.1")


def test_every_http_client_of_the_app_uses_a_session_that_reads_the_environment_once(monkeypatch, tmp_path):
    from shared.databricks.auth import OAuthM2MToken, PatToken
    from shared.databricks.client import DatabricksClient
    from shared.notify.channels.send import ChannelSender
    from shared.notify.transports.acs import AcsTransport
    from shared.settings import Settings
    from shared.wiring import queue_client, table_service

    _clean_proxy_env(monkeypatch)
    assert isinstance(DatabricksClient("https://adb-1.example.invalid", PatToken("dapi" + "0" * 32))._session,
                      ProxySession)
    assert isinstance(ChannelSender("teams", url=lambda: "https://x.example.invalid/hook").session, ProxySession)

    used = []

    class Answer:
        status_code, content = 200, b"{}"

        def json(self):
            return {"access_token": "t" * 30, "expires_in": 3600}

    monkeypatch.setattr(ProxySession, "post", lambda self, *a, **k: used.append(self) or Answer())
    oauth = OAuthM2MToken("https://adb-1.example.invalid", "client", "s" * 20)
    assert oauth.authorization() == "Bearer " + "t" * 30
    assert len(used) == 1 and isinstance(used[0], ProxySession)

    settings = Settings(storage_connection_string="UseDevelopmentStorage=true",
                        databricks_workspace_url="https://adb-1.example.invalid", databricks_pat_token="x")
    acs = AcsTransport(endpoint="https://acs.example.invalid", connection_string=lambda: (
        "endpoint=https://acs.example.invalid/;accesskey=" + "a" * 44))
    for transport in (table_service(settings)._client._client._pipeline._transport,
                      queue_client(settings)._pipeline._transport, acs._get_client()._client._pipeline._transport):
        assert isinstance(transport.session, ProxySession) and transport.session.trust_env is False
