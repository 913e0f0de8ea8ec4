"""PartitionKey / RowKey values Azure Table Storage accepts, made from any text without two texts colliding.

Table keys may not hold / \\ # ? nor control characters (U+0000-U+001F, U+007F-U+009F), and are at most 1 KiB.
Replacing them all by one character made `a/b@x.com` and `a#b@x.com` one key (one rate counter, one digest
row); they are escaped instead as ~XX (~ itself too, so the encoding is one-to-one; ~ rather than %, so no
client takes a key for URL-encoded text), and a key cut for length keeps a hash of the whole.
"""

from __future__ import annotations

import hashlib
import re

MAX_KEY_CHARS = 512  # characters; 1 KiB of UTF-16, the service's limit
_FORBIDDEN = re.compile(r"[/\\#?~\x00-\x1f\x7f-\x9f]")


def table_key(text: str) -> str:
    """`text` as a valid, collision-free table key (identity for ordinary keys such as 'ws:123:0')."""
    encoded = _FORBIDDEN.sub(lambda m: f"~{ord(m.group()):02X}", text)
    if len(encoded) <= MAX_KEY_CHARS:
        return encoded
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{encoded[: MAX_KEY_CHARS - 34]}~{digest}"
