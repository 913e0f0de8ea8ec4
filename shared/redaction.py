"""Keep secrets out of logs, decision records and emails.

`redact(text)` masks every credential shape of the catalogue in shared/secret_shapes.py (Databricks tokens,
bearer / basic auth values, API keys, connection-string keys, SAS signatures, passwords in every JDBC syntax,
JWTs, Entra client secrets, PEM/PGP private keys whole or cut) and every value registered with
`register_secret` (each secret read from Key Vault or the settings). `RedactingFilter`
applies it to log records; `install_redaction()` puts the filter on the root logger and its handlers.
`redact_data` does the same for JSON-like data (a decision record's dump, an email's fields).
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from shared.secret_shapes import AUTH_VALUE, MASK, SHAPES, Prechecks, is_secret_name

# Shorter values are not registered: masking every "true" or "test" in the logs would hide more than it protects.
MIN_REGISTERED_LENGTH = 6


def _mask_auth(match: re.Match[str]) -> str:
    scheme, space, value = match.group(1), match.group(2), match.group(3)
    if value == MASK or not _looks_like_credential(scheme.lower(), value):
        return match.group(0)
    return f"{scheme}{space}{MASK}"


def _looks_like_credential(scheme: str, value: str) -> bool:
    # Prose ("Bearer token authentication", "Basic auth is on") must stay readable; credentials are
    # long or carry digits, and a Basic value decodes to "user:password".
    if scheme == "basic":
        try:
            return ":" in base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return False
    if "=" in value.rstrip("="):  # "bearer idempotency_token=x": a name=value follows the word, not a token
        return False
    return len(value) >= 8 and (any(c.isdigit() for c in value) or len(value) >= 20)


class _Memo:
    """Texts already redacted, with their result: a decision record is saved three times with the same long
    error texts, and log fields repeat. Bounded by total size; emptied whenever a secret is registered (the
    answer depends on the registered secrets, and on nothing else but the text)."""

    MAX_TEXT = 32_000  # longer texts are redacted every time
    MAX_TOTAL = 4_000_000  # characters kept (texts and results), about 8 MB of str

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._results: dict[str, str] = {}
        self._size = 0
        self.generation = 0  # bumped by clear(): a result computed before a registration is not kept

    def get(self, text: str) -> str | None:
        return self._results.get(text)

    def put(self, text: str, result: str, generation: int) -> None:
        if len(text) > self.MAX_TEXT:
            return
        with self._lock:
            if generation != self.generation or text in self._results:
                return
            self._results[text] = result
            self._size += len(text) + len(result)
            while self._size > self.MAX_TOTAL and self._results:
                oldest = next(iter(self._results))  # insertion order: the oldest first
                self._size -= len(oldest) + len(self._results.pop(oldest))

    def clear(self) -> None:
        with self._lock:
            self._results, self._size = {}, 0
            self.generation += 1


_memo = _Memo()


class _KnownSecrets:
    """The secret values seen at runtime, kept as one compiled pattern (longest first)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: str) -> None:
        if not value or len(value) < MIN_REGISTERED_LENGTH or value == MASK:
            return
        # A secret also shows up URL-encoded (query strings, form bodies).
        variants = {value, quote(value, safe="")}
        with self._lock:
            if variants <= self._values:
                return
            self._values |= variants
            alternatives = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in alternatives))
            _memo.clear()  # a text redacted before may hold this secret

    def mask(self, text: str) -> str:
        pattern = self._pattern
        return pattern.sub(MASK, text) if pattern is not None else text


# Process-wide on purpose: the logging filter is process-wide too, and a secret read by one part of the
# app must be masked in every other part's logs.
_known = _KnownSecrets()


def register_secret(value: str | None) -> None:
    """Mask this exact value (and its URL-encoded form) wherever it appears from now on."""
    if value:
        _known.add(value)


def redact(text: str) -> str:
    """`text` with every secret-looking part and every registered secret replaced by ***."""
    if not text:
        return text
    done = _memo.get(text)
    if done is not None:
        return done
    generation = _memo.generation
    # Masking only removes text, so a literal absent from `text` is absent after each step too.
    may = Prechecks(text)
    result = _known.mask(text)
    for shape in SHAPES:
        if may.allows(shape.name):
            result = shape.apply(result)
    if may.allows("authorization value"):
        result = AUTH_VALUE.sub(_mask_auth, result)
    _memo.put(text, result, generation)
    return result


# Keys whose value is a secret in JSON-like data (a spark_conf, a settings dump, an HTTP header map).
_SENSITIVE_KEY = re.compile(
    r"(?i)(password|passwd|secret|api[_.-]?key|account[_.-]?key|access[_.-]?key|accesskey|authorization"
    r"|credential|connection[_-]?string|connectionstring|sas[_-]?token|access[_-]?token|refresh[_-]?token"
    r"|pat[_-]?token|functions[_-]?key)"
)
_SENSITIVE_EXACT = frozenset({"token", "pwd", "sig", "pat"})
# A Databricks secret reference is not itself a secret.
_SECRET_REFERENCE = re.compile(r"^\{\{secrets/[^}]+\}\}$")


@functools.lru_cache(maxsize=4096)
def is_sensitive_key(key: str) -> bool:
    """True for keys such as `password`, `api_key`, `fs.azure.account.key.<acct>...`, `client.secret`."""
    lowered = key.lower()
    if lowered.endswith(("name", "names")):  # pat_secret_name holds the secret's name, not the secret
        return False
    return lowered in _SENSITIVE_EXACT or bool(_SENSITIVE_KEY.search(lowered)) or is_secret_name(key)


def redact_data(value: Any) -> Any:
    """A copy of JSON-like `value` (dicts, lists, strings) with secrets masked; values of sensitive keys whole."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and is_sensitive_key(key) and isinstance(item, str) and item:
                out[key] = item if _SECRET_REFERENCE.match(item) else MASK
            else:
                out[key] = redact_data(item)
        return out
    if isinstance(value, (list, tuple)):
        return type(value)(redact_data(item) for item in value)
    return value


# --- logging ------------------------------------------------------------------------------------------

# Attributes every LogRecord has; anything else came from `extra=` and is redacted too.
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None).__dict__
) | {"message", "asctime", "taskName"}


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message, arguments, exception text, stack and `extra` fields.

    The message is formatted here (msg % args) and the arguments dropped, so a secret inside an argument's
    str() cannot escape. The exception is formatted to text and `exc_info` cleared, so a handler that
    formats the exception itself cannot print the raw message either.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        # The same record passes the root logger's filter and each handler's: redacted once. The mark is the
        # message's type (an attribute would show up as a custom dimension in Application Insights).
        if type(record.msg) is not _RedactedMessage:
            _redact_record(record)
        return True


class _RedactedMessage(str):
    """A record's message after the filter redacted the record."""


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string must not lose the record (or leak its args)
        message = f"{record.msg} {record.args!r}"
    record.msg, record.args = _RedactedMessage(redact(message)), None
    if "message" in record.__dict__:
        record.message = record.msg
    if record.exc_info:
        if not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    for name, value in list(record.__dict__.items()):
        if name in _STANDARD_ATTRS or name.startswith("_"):
            continue
        if isinstance(value, str) and is_sensitive_key(name) and value:
            record.__dict__[name] = MASK
        elif isinstance(value, (str, dict, list, tuple)):
            record.__dict__[name] = redact_data(value)


def _add_filter(target: logging.Logger | logging.Handler) -> None:
    if not any(isinstance(f, RedactingFilter) for f in target.filters):
        target.addFilter(RedactingFilter())


def install_redaction(logger: logging.Logger | None = None) -> None:
    """Put a RedactingFilter on the root logger and its handlers (and on `logger` and its handlers). Idempotent.

    A handler filter sees every record that reaches the handler, whichever logger created it; a logger
    filter only sees that logger's own records. Handlers added later need another call.
    """
    targets: list[logging.Logger | logging.Handler] = []
    for each in _loggers(logger):
        targets.append(each)
        targets.extend(each.handlers)
    for target in targets:
        _add_filter(target)


def _loggers(logger: logging.Logger | None) -> Iterable[logging.Logger]:
    root = logging.getLogger()
    yield root
    if logger is not None and logger is not root:
        yield logger


def uninstall_redaction(logger: logging.Logger | None = None) -> None:
    """Remove what install_redaction(logger) added (tests restore the logging setup with it)."""
    for each in _loggers(logger):
        for target in (each, *each.handlers):
            for existing in [f for f in target.filters if isinstance(f, RedactingFilter)]:
                target.removeFilter(existing)
