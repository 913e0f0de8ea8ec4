"""HTTP sessions that read the environment once, not on every call.

A plain `requests.Session` (trust_env on) scans os.environ for proxies, NO_PROXY and CA-bundle variables and
looks for a .netrc file on each request: 11 % of a worker's CPU in the profile of issue 13. `ProxySession`
turns that off and takes the same settings from the environment once, when it is built: HTTPS_PROXY /
HTTP_PROXY / ALL_PROXY (either case), NO_PROXY matched per host as requests matches it (decided once per
origin), and REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE. `sdk_transport()` gives the Azure SDK clients the same.
"""

from __future__ import annotations

import os
import threading
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies_environment

import requests
from requests.utils import address_in_network, is_ipv4_address, is_valid_cidr

_MAX_ORIGINS = 1024  # proxy decisions remembered per session (one per scheme://host:port)


class ProxySession(requests.Session):
    """A requests Session with trust_env off and the environment's proxy and CA settings taken at construction."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False
        found = getproxies_environment()
        self.no_proxy = found.pop("no", "")
        self.env_proxies: dict[str, str] = found
        self.ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None
        self._lock = threading.Lock()
        self._by_origin: dict[str, dict[str, str]] = {}

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        # requests' per-call hook into the environment: answered from what was read at construction.
        if not proxies:
            proxies = self.proxies_for(url)
        if (verify is True or verify is None) and self.ca_bundle:
            verify = self.ca_bundle
        return super().merge_environment_settings(url, proxies, stream, verify, cert)

    def proxies_for(self, url: str) -> dict[str, str]:
        """The proxies a request to `url` goes through ({} for a NO_PROXY host)."""
        if not self.env_proxies:
            return {}
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._lock:
            found = self._by_origin.get(origin)
            if found is None:
                found = {} if bypasses(parts.hostname or "", parts.port, self.no_proxy) else dict(self.env_proxies)
                if len(self._by_origin) >= _MAX_ORIGINS:
                    self._by_origin.clear()
                self._by_origin[origin] = found
        return found


def bypasses(host: str, port: int | None, no_proxy: str) -> bool:
    """True when NO_PROXY names `host` (requests' rules: '*', an IP or CIDR, a suffix of host or host:port)."""
    entries = [e for e in no_proxy.replace(" ", "").lower().split(",") if e]
    host = host.lower()
    if not host or not entries:
        return False
    if "*" in entries:
        return True
    if is_ipv4_address(host):
        return any(address_in_network(host, e) if is_valid_cidr(e) else host == e for e in entries)
    with_port = f"{host}:{port}" if port else host
    return any(host.endswith(e) or with_port.endswith(e) for e in entries)


# Client keyword arguments that configure the connection: an SDK client given a transport leaves them to it.
CONNECTION_KWARGS = ("connection_timeout", "read_timeout", "connection_verify", "connection_cert",
                     "connection_data_block_size")


def sdk_transport(client_kwargs: dict[str, Any] | None = None) -> Any:
    """An azure-core transport over a ProxySession (for the Table, Queue and ACS clients), configured with the
    connection settings among `client_kwargs`."""
    from azure.core.pipeline.transport import RequestsTransport

    settings = {k: v for k, v in (client_kwargs or {}).items() if k in CONNECTION_KWARGS}
    # use_env_settings=False keeps the session's trust_env off; the session holds the proxies instead.
    return RequestsTransport(session=ProxySession(), use_env_settings=False, **settings)


def with_sdk_transport(client_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """`client_kwargs` plus a ProxySession transport, unless they bring their own."""
    kwargs = dict(client_kwargs or {})
    if "transport" not in kwargs:
        kwargs["transport"] = sdk_transport(kwargs)
    return kwargs
