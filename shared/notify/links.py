"""Links in an email: the feedback links, and run pages only as plain http(s) URLs."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit


def defang(text: str) -> str:
    """Placeholder: links are made unclickable here (see the link policy)."""
    return text


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
