"""How an outbox entry's bodies and strings fit Table Storage properties (shared/notify/outbox.py)."""

from __future__ import annotations

import html as html_lib
import json
import zlib
from typing import Any

# A Table property holds at most 64 KiB; the compressed bodies stay well under it, and so do the strings.
MAX_BODY_BYTES = 60_000
MAX_STRING_CHARS = 8_000
TRUNCATION_NOTE = "[truncated in the outbox: the email was larger than a Table Storage property may hold]"


def pack_body(text: str, html: str, items: list[str] | None = None) -> tuple[bytes, str]:
    """The bodies zlib-compressed as one JSON document; cut (with a note) if even that is too large."""
    items = list(items or [])
    packed = _compress(text, html, items)
    if len(packed) <= MAX_BODY_BYTES:
        return packed, ""
    limit = len(text)
    while True:
        limit //= 2
        cut = text[:limit] + "\n\n" + TRUNCATION_NOTE
        page = f"<pre style=\"white-space:pre-wrap\">{html_lib.escape(cut)}</pre>"
        packed = _compress(cut, page, items[: max(limit // 40, 10)])
        if len(packed) <= MAX_BODY_BYTES:
            return packed, TRUNCATION_NOTE


def unpack_body(value: Any) -> tuple[str, str, list[str]]:
    if not value:
        return "", "", []
    data = json.loads(zlib.decompress(bytes(value)).decode("utf-8"))
    return data.get("text", ""), data.get("html", ""), list(data.get("items", []))


def _compress(text: str, html: str, items: list[str]) -> bytes:
    return zlib.compress(json.dumps({"text": text, "html": html, "items": items}).encode("utf-8"), 9)


def _json_list(values: list[Any]) -> str:
    """A JSON list that fits a property: items are dropped from the end (never cut mid-JSON)."""
    items = list(values)
    while True:
        encoded = json.dumps(items, ensure_ascii=False)
        if len(encoded) <= MAX_STRING_CHARS:
            return encoded
        items = items[: len(items) // 2]


def _cut(value: str) -> str:
    return value if len(value) <= MAX_STRING_CHARS else value[: MAX_STRING_CHARS - 20] + " …[truncated]"
