"""Sessions that read the environment once: no ~/.netrc lookup, proxy scan or CA-path stat on every request."""

from __future__ import annotations

import os

import requests

from shared.http_session import settled_session
from shared.wiring import _endpoint_in


def test_the_environment_is_read_once_and_still_applies(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.contoso.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/corporate.pem")

    remote = settled_session("https://adb-1.2.azuredatabricks.net")
    local = settled_session("http://127.0.0.1:8080")

    assert remote.trust_env is False and local.trust_env is False
    assert remote.proxies.get("https") == "http://proxy.contoso.example:3128"
    assert remote.verify == "/etc/ssl/certs/corporate.pem"
    assert "https" not in local.proxies and local.verify is True  # bypassed; plain http verifies nothing


def test_a_request_does_not_look_for_netrc_or_scan_for_proxies(monkeypatch):
    looked: list[str] = []
    real_exists = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda p: looked.append(str(p)) or real_exists(p))
    monkeypatch.setattr(requests.utils, "get_environ_proxies", lambda *a, **k: looked.append("proxies") or {})
    session = settled_session("http://127.0.0.1:9")
    looked.clear()
    prepared = session.prepare_request(requests.Request("GET", "http://127.0.0.1:9/x"))
    session.merge_environment_settings(prepared.url, {}, None, None, None)
    assert not any("netrc" in p for p in looked) and "proxies" not in looked


def test_the_storage_endpoint_is_read_from_the_connection_string():
    assert _endpoint_in("UseDevelopmentStorage=true", "TableEndpoint", 10002) == "http://127.0.0.1:10002/"
    assert _endpoint_in("DefaultEndpointsProtocol=http;AccountName=a;AccountKey=k;"
                        "TableEndpoint=http://127.0.0.1:5/a;", "TableEndpoint", 1) == "http://127.0.0.1:5/a"
    assert _endpoint_in("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=k;EndpointSuffix=core.windows.net",
                        "QueueEndpoint", 1) == "https://acct.queue.core.windows.net/"
