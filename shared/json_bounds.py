"""Bounds a JSON body must keep before it is parsed: nesting depth and length of number literals.

json.loads on a body nested 20,000 levels deep raises RecursionError, and on a 5,000-digit integer ValueError
(Python's int-conversion limit): both are the client's fault, so they must be a 400, not a 500. One linear
pass over the bytes, outside strings, finds them first; the parse then only sees bodies it can handle.
"""

from __future__ import annotations

import re

from shared.exceptions import BadRequest

MAX_DEPTH = 32  # a Databricks notification nests 3 levels
MAX_NUMBER_CHARS = 40  # ids are int64 (19 digits); a float in exponent form stays well under this

# Strings (with escapes), then the structural characters and number runs that matter between them.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"?|[\[\]{}]|[-+0-9.eE]+', re.S)


def check_json_bounds(body: bytes, *, max_depth: int = MAX_DEPTH, max_number_chars: int = MAX_NUMBER_CHARS) -> None:
    """BadRequest when `body` nests deeper than `max_depth` or holds a number literal longer than `max_number_chars`."""
    depth = 0
    for match in _TOKEN.finditer(body):
        token = match.group()
        first = token[:1]
        if first == b'"':
            continue
        if first in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                raise BadRequest(f"body nests deeper than {max_depth} levels", field="body")
        elif first in (b"]", b"}"):
            depth -= 1
        elif len(token) > max_number_chars:
            raise BadRequest(f"a number in the body is longer than {max_number_chars} characters "
                             f"(at byte {match.start()})", field="body")
