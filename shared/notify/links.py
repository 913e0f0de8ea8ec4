"""Links in an email: clickable only to the configured workspace hosts and the agent's own feedback page.

Every other URL or domain in a text the email shows (error text a job author wrote, model text) is defanged in
both parts: `https://evil.example/x` becomes `hxxps://evil[.]example/x`, `evil.com` becomes `evil[.]com`,
`javascript:` becomes `javascript[:]`. Mail clients link bare domains and URLs in plain text on their own, so
escaping is not enough; the hosts are compared exactly (a look-alike host is another host).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

# Top-level domains a mail client turns into links on sight (the common generic ones and country codes). A
# dotted name ending in anything else (java.lang.Error, main.sales.orders, notebook.py) is left alone.
LINKED_TLDS = frozenset("""
com net org edu gov mil int info biz name pro io co ai app dev cloud site online top shop store tech xyz club
live link click icu me tv cc ly gl to ws us uk de fr nl ru cn jp in br au ca eu ch se no it es pl be at dk fi
ie nz za kr tw hk sg mx ar cl tk ml ga cf gq pw su ua tr ir vn id th my ph pk ng ke eg sa ae il gr pt cz hu ro
bg hr sk si lt lv ee is lu li mc by kz uz az ge am md rs ba mk al me onion zip mov page email win bid
""".split())

_COLON = r"(?:[:\uff1a\ufe55\ufe13]|&#58;|%3a)"
# One pass, left to right: a URL (its scheme perhaps spaced out, with a look-alike colon, or already hxxp),
# a script scheme, or a bare dotted host name (labels of any script: a look-alike is still a host).
_LINKISH = re.compile(
    r"(?i)(?P<url>\b(?P<scheme>h\s?[tx]\s?[tx]\s?p\s?s?|s?ftp|file|wss?)\s*" + _COLON + r"\s*//(?P<rest>[^\s\"'<>`]*))"
    r"|(?P<script>\b(?:javascript|vbscript|data|livescript|mailto)\s*" + _COLON + r")"
    r"|(?P<host>(?<![\w\-.\[])(?P<labels>(?:[^\W_](?:[\w\-]{0,61}[^\W_])?\.)+)(?P<tld>[^\W\d_]{2,24})\b(?![\-(\[]))"
)
_PLAIN_URL = re.compile(r"(?i)https?://")


def allowed_hosts(urls: Iterable[str | None]) -> frozenset[str]:
    """The lower-cased host names of `urls` (the workspace URLs, FEEDBACK_URL)."""
    hosts = set()
    for url in urls:
        if url:
            try:
                host = urlsplit(url.strip()).hostname
            except ValueError:
                continue
            if host:
                hosts.add(host.lower())
    return frozenset(hosts)


def defang(text: str, allowed: frozenset[str] = frozenset()) -> str:
    """`text` with every URL, domain and script scheme not on an `allowed` host made unclickable."""
    if not text:
        return text
    return _LINKISH.sub(lambda match: _defang_one(match, allowed), text)


def _defang_one(match: re.Match[str], allowed: frozenset[str]) -> str:
    if match.group("script"):
        return re.sub(_COLON + r"$", "[:]", match.group("script").rstrip(), flags=re.I)
    if match.group("host"):
        labels, tld = match.group("labels"), match.group("tld")
        if (labels + tld).lower() in allowed or (tld.lower() not in LINKED_TLDS and tld.isascii()):
            return match.group(0)
        return f"{labels[:-1]}[.]{tld}"
    rest = match.group("rest")
    try:
        host = urlsplit("//" + rest).hostname if rest else None
    except ValueError:
        host = None
    if _PLAIN_URL.match(match.group("url")) and host and host.lower() in allowed:
        return match.group(0)
    scheme = re.sub(r"\s", "", match.group("scheme")).lower()
    shown = ("hxxps" if scheme.endswith("s") else "hxxp") if scheme.startswith("h") else scheme
    return f"{shown}[:]//{_dots(rest)}"


def _dots(rest: str) -> str:
    """The host part of a URL with its dots bracketed (the path keeps its own)."""
    cut = min([i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0] or [len(rest)])
    return rest[:cut].replace(".", "[.]") + rest[cut:]


def defang_view(value: Any, allowed: frozenset[str], *, keep: frozenset[str]) -> Any:
    """A template view with every string defanged, except the values of the `keep` keys (vetted links)."""
    if isinstance(value, str):
        return defang(value, allowed)
    if isinstance(value, dict):
        return {k: v if k in keep else defang_view(v, allowed, keep=keep) for k, v in value.items()}
    if isinstance(value, list):
        return [defang_view(v, allowed, keep=keep) for v in value]
    return value


def feedback_links(base: str | None, key: str) -> dict[str, str] | None:
    """Links to the feedback endpoint: '{key}' in FEEDBACK_URL is replaced, else ?key= is added; plus verdicts."""
    if not base:
        return None
    if "{key}" in base:
        page = base.replace("{key}", quote(key, safe=""))
    else:
        page = _with_query(base, key=key)
    return {"page": page, "right": _with_query(page, verdict="right"), "wrong": _with_query(page, verdict="wrong")}


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def safe_url(url: str | None) -> str | None:
    """Only http(s) links go into an email (a javascript: URL in a run page field would be a trap)."""
    if url and url.strip().lower().startswith(("https://", "http://")) and not any(c in url for c in "\r\n\"'<> "):
        return url.strip()
    return None
