"""One stable fingerprint per failure, so "the same failure again" is recognisable.

The LLM answer cache, notification dedupe, digests, incident grouping and "same failure after a retry" all
key on it, so it must not change with run ids, timestamps, hosts, paths, numbers or quoted values, and must
change when the root cause does. Inputs: the root-cause exception type, the error class, the termination or
cluster code, and the root cause's text, normalized.
"""

from __future__ import annotations

import hashlib
import re

VERSION = "fp1"  # bump when normalize() changes meaning, so stored fingerprints are not compared across versions
_MAX_TEXT = 400  # of normalized text: enough to tell causes apart, short enough to ignore trailing detail

# Order matters: the wider shapes (URLs, paths, timestamps) go before the narrow ones (hex, numbers).
# Each rule names a character its matches always contain, so texts without it skip the regex.
_RULES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (needs, re.compile(pattern, flags), repl)
    for needs, pattern, repl, flags in (
        # Orchestrator wrappers that name the task: the failure is the same whichever task carried it.
        ("ask ", r"^\s{0,20}task \S{1,200} failed with message:\s{0,5}", "", re.I | re.M),
        ("skipped", r"\bthis caused all downstream tasks to get skipped\.?", "", re.I),
        ("://", r"\b[a-z][a-z0-9+.-]{1,20}://[^\s'\"`<>()\[\]{},]{1,2000}", "<url>", re.I),
        ("@", r"\b[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,10}\b", "<email>", 0),
        ("-", r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "<uuid>", re.I),
        ("-", r"\b\d{4}-\d{2}-\d{2}[t ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:z|[+-]\d{2}:?\d{2})?\b", "<ts>", re.I),
        ("", r"\b\d{4}[-/]\d{2}[-/]\d{2}\b|\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d{1,9})?\b", "<ts>", 0),
        (".", r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b", "<ip>", 0),
        (":", r"\b(?:[0-9a-f]{1,4}:){3,7}[0-9a-f]{1,4}\b", "<ip>", re.I),
        ("", r"(?:[a-z]:)?(?:[/\\][\w.@$%+=~-]{1,255}){2,64}[/\\]?", "<path>", re.I),
        (".", r"\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.){2,10}(?:com|net|org|io|internal|local|cloud|dev|edu|"
         r"gov|[a-z]{2})(?::\d{1,5})?\b", "<host>", re.I),
        ("", r"'[^'\n]{0,300}'|\"[^\"\n]{0,300}\"|`[^`\n]{0,300}`", "<v>", 0),
        ("", r"\b0x[0-9a-f]{1,32}\b|\b(?=[0-9]{0,127}[a-f])[0-9a-f]{12,128}\b", "<hex>", re.I),  # not all digits
        ("-", r"\b\d{4}-\d{6}-[a-z0-9]{8}\b", "<id>", re.I),  # Databricks cluster ids
        ("", r"(?<![a-z])[-+]?\d[\d_.,]{0,40}(?:[kmgt]i?b|ms|s|l)?\b", "<n>", re.I),
        ("", r"\s{1,1000}", " ", 0),
    )
)
_MAX_INPUT = 20_000  # normalize() looks at the start of long texts only; the cause is in the first lines


def normalize(text: str) -> str:
    """`text` with ids, numbers, hex, uuids, paths, hosts/IPs, timestamps and quoted values replaced by
    placeholders, lower-cased, whitespace collapsed."""
    text = text[:_MAX_INPUT]
    lowered = text.lower()
    for needs, pattern, repl in _RULES:
        if needs in lowered:  # "" is in every text
            text = pattern.sub(repl, text)
    return text.strip().lower()


def fingerprint(
    text: str = "",
    *,
    exception: str | None = None,
    error_class: str | None = None,
    code: str | None = None,
) -> str:
    """A short stable hash (16 hex characters) of the failure's root cause.

    `exception` is the root-cause type (qualified or simple; only the simple name counts), `error_class` the
    Spark/Delta class (`UNRESOLVED_COLUMN.WITH_SUGGESTION`), `code` the termination or cluster reason code,
    `text` the root cause's message.
    """
    simple = exception.rpartition(".")[2] if exception else ""
    parts = (VERSION, simple, (error_class or "").upper(), (code or "").upper(), normalize(text)[:_MAX_TEXT])
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]
