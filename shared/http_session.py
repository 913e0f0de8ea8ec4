"""requests sessions that read the environment once instead of on every request.

With `trust_env` on (requests' default), every request looks for ~/.netrc (two stats), checks the CA bundle
path named by REQUESTS_CA_BUNDLE (a stat) and scans the environment for proxies: in the throughput bench that
was most of the worker's time outside the sockets (`make bench-pipeline --profile`). The settings it would
find are read here, once, when the session is made: a proxy from HTTPS_PROXY / NO_PROXY and the CA bundle still
apply; a .netrc never did anything useful here (every call carries its own credentials).
"""

from __future__ import annotations

import os
from typing import Any

import requests
from requests.utils import get_environ_proxies


def settled_session(base_url: str | None = None, session: requests.Session | None = None) -> requests.Session:
    """`session` (or a new one) with the environment's proxies for `base_url` and CA bundle fixed, trust_env off."""
    session = session or requests.Session()
    if base_url:
        session.proxies.update(get_environ_proxies(base_url))
    else:
        session.proxies.update({k: v for k, v in requests.utils.getproxies().items() if k in ("http", "https")})
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    plain_http = bool(base_url) and base_url.lower().startswith("http://")  # nothing to verify: no stat per call
    if bundle and session.verify is True and not plain_http:
        session.verify = bundle
    session.trust_env = False
    return session


def azure_transport(base_url: str | None = None) -> Any:
    """An azure-core transport over a settled session, for the storage clients (`transport=`)."""
    from azure.core.pipeline.transport import RequestsTransport

    return RequestsTransport(session=settled_session(base_url), session_owner=True)
