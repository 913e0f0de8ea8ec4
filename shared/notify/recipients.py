"""Who gets an email: the job's own failure addresses, else a job tag, else the configured default list.

Escalations go to EMAIL_ESCALATION_RECIPIENTS when it is set. Every address is validated: one plain mailbox,
no display name, no line breaks (a CR/LF in an address is a header injection, not a typo). Addresses from the
job (on_failure, the tag: anyone who can edit the job wrote them) must be in EMAIL_ALLOWED_DOMAINS when it is
set; the others are dropped, and the default recipients get the email too, so they see what was dropped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from shared.databricks.models import Job
from shared.notify.exceptions import InvalidAddress
from shared.notify.kinds import NotificationKind
from shared.settings import Settings

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 50  # more than this on one failure email is a configuration mistake, not an audience

# A practical subset of RFC 5321: dot-atom local part, dotted domain of LDH labels. No quoted local parts,
# no IP literals, no display names: these addresses come from job settings and tags, not from people typing.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    rf"@{_LABEL}(?:\.{_LABEL})+$"
)
_SEPARATORS = re.compile(r"[,;\s]+")


@dataclass(frozen=True)
class Recipients:
    """The addresses to write to, where they came from, and what was dropped as invalid."""

    to: tuple[str, ...]
    source: str  # on_failure | tag | default | escalation | none
    invalid: tuple[str, ...] = field(default=())
    dropped: tuple[str, ...] = field(default=())  # valid, but outside EMAIL_ALLOWED_DOMAINS


def validate_address(raw: str) -> str:
    """The address normalized (trimmed, domain lower-cased), or InvalidAddress naming what is wrong."""
    if not isinstance(raw, str):
        raise InvalidAddress(f"not an address: {raw!r}")
    if any(ch in raw for ch in "\r\n\0"):
        raise InvalidAddress(f"line break or NUL in address {raw!r}")
    address = raw.strip()
    if len(address) > 254:
        raise InvalidAddress(f"address longer than 254 characters: {address[:40]!r}…")
    if not _ADDRESS.match(address):
        raise InvalidAddress(f"not a valid email address: {address!r}")
    local, _, domain = address.rpartition("@")
    if len(local) > 64:
        raise InvalidAddress(f"local part longer than 64 characters: {address!r}")
    return f"{local}@{domain.lower()}"


def split_addresses(value: str | Iterable[str] | None) -> list[str]:
    """Addresses from a string separated by commas, semicolons or spaces (a tag), or a list of one per item."""
    if value is None:
        return []
    if isinstance(value, str):
        return [p for p in _SEPARATORS.split(value) if p]
    return [item for item in value if isinstance(item, str)]


def clean(addresses: Iterable[str]) -> tuple[list[str], list[str]]:
    """(valid addresses without duplicates, invalid ones); duplicates compare case-insensitively."""
    valid: list[str] = []
    invalid: list[str] = []
    seen: set[str] = set()
    for raw in addresses:
        try:
            address = validate_address(raw)
        except InvalidAddress:
            invalid.append(raw)
            continue
        if address.lower() not in seen:
            seen.add(address.lower())
            valid.append(address)
    return valid[:MAX_RECIPIENTS], invalid


def in_domains(address: str, domains: Iterable[str]) -> bool:
    """True when the address's domain is one of `domains` or below one (eu.contoso.com is in contoso.com)."""
    domain = address.rpartition("@")[2].lower()
    return any(domain == d or domain.endswith("." + d) for d in domains)


def resolve_recipients(kind: NotificationKind | None, job: Job | None, settings: Settings) -> Recipients:
    """Who gets the email of `kind` about `job` (kind: the acted kind; an observe email is addressed alike)."""
    invalid: list[str] = []
    dropped: list[str] = []
    allowed = settings.email_allowed_domains
    if kind is NotificationKind.ESCALATION and settings.email_escalation_recipients:
        valid, bad = clean(settings.email_escalation_recipients)
        invalid += bad
        if valid:
            return _done(valid, "escalation", invalid, job)

    candidates: list[tuple[str, list[str]]] = []
    if job is not None:
        on_failure = job.settings.email_notifications.get("on_failure")
        candidates.append(("on_failure", split_addresses(on_failure)))
        tags = {k.lower(): v for k, v in (job.settings.tags or {}).items()}
        candidates.append(("tag", split_addresses(tags.get(settings.email_recipients_tag.lower()))))
    candidates.append(("default", list(settings.email_default_recipients)))

    for source, addresses in candidates:
        valid, bad = clean(addresses)
        invalid += bad
        if allowed and source != "default":
            dropped += [a for a in valid if not in_domains(a, allowed)]
            valid = [a for a in valid if in_domains(a, allowed)]
        if valid:
            if dropped and source != "default":
                valid, _ = clean([*valid, *settings.email_default_recipients])
            return _done(valid, source, invalid, job, dropped)
    return _done([], "none", invalid, job, dropped)


def _done(valid: list[str], source: str, invalid: list[str], job: Job | None,
          dropped: list[str] | None = None) -> Recipients:
    if invalid:
        log.warning(
            "ignored invalid recipient addresses",
            extra={"job_id": job.job_id if job else None, "invalid": invalid[:10], "source": source},
        )
    if dropped:
        log.warning("dropped recipients outside EMAIL_ALLOWED_DOMAINS",
                    extra={"job_id": job.job_id if job else None, "dropped": dropped[:10], "source": source})
    return Recipients(tuple(valid), source, tuple(invalid), tuple(dropped or ()))
