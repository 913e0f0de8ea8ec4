"""What a valid value of one setting is: the checks `Settings` runs per field.

Every function here looks at one value only, so pydantic reports all bad values together; checks that
compare settings are in problems.py, and DATABRICKS_WORKSPACES in workspaces.py, beside this module.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic_settings import NoDecode

KEY_VAULT_REFERENCE_PREFIX = "@Microsoft.KeyVault("
KEY_VAULT_REFERENCE_FIX = (
    "App Service could not read the secret: check that it exists, that the app's identity has the "
    "Key Vault Secrets User role on the vault, and (user-assigned identity) the site's keyVaultReferenceIdentity"
)
# Key Vault secret names: 1-127 letters, digits and dashes.
SECRET_NAME_PATTERN = r"^[0-9A-Za-z-]{1,127}$"

# A list given as one comma-separated string (NoDecode: not as JSON).
CommaList = Annotated[list[str], NoDecode]


def split_commas(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def upper_case(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def http_url(value: str | None, *, https_only: bool = False) -> str | None:
    if value is None:
        return None
    value = value.strip()
    schemes = ("https://",) if https_only else ("https://", "http://")
    if not value.startswith(schemes) or len(value) <= len("https://"):
        raise ValueError(
            "must be an https:// URL" if https_only else "must start with https:// (http:// only for a local fake)"
        )
    return value.rstrip("/")


def https_url(value: str | None) -> str | None:
    # The Key Vault SDK refuses bearer tokens over http://, so a local fake must be HTTPS too.
    return http_url(value, https_only=True)


def databricks_host(value: object) -> object:
    """A workspace host given without a scheme gets https://, as the Databricks SDKs and CLI do."""
    if isinstance(value, str) and value.strip() and "://" not in value:
        return "https://" + value.strip()
    return value


# DATABRICKS_AUTH_TYPE values of Databricks unified authentication -> the agent's DATABRICKS_AUTH.
_AUTH_TYPES = {"pat": "pat", "oauth-m2m": "oauth-m2m", "entra": "entra", "azure-msi": "entra", "azure-cli": "entra"}


def databricks_auth_type(value: object) -> object:
    if isinstance(value, str):
        key = value.strip().lower()
        if key and key not in _AUTH_TYPES:
            raise ValueError(f"must be pat, oauth-m2m or entra (azure-msi and azure-cli mean entra), not {value!r}")
        return _AUTH_TYPES.get(key, value)
    return value


def workspace_id(value: object) -> str | None:
    """Databricks workspace ids are numbers (the webhook carries one); kept as their decimal string."""
    if value is None:
        return None
    if isinstance(value, bool) or not str(value).strip().isdigit():
        raise ValueError("must be the numeric workspace id (the number after ?o= in the workspace URL)")
    return str(int(str(value).strip()))


# NCRONTAB as the Functions host reads it: six fields, seconds first; numbers, names (Jan, Mon), `*`, ranges,
# lists and steps; day of week 0-6 (Sunday 0). croniter checks the ranges; it also knows extensions the host
# refuses (L, W, #, ?, H, day of week 7), which are turned away here first.
_NCRONTAB_FIELDS = (("second", "0-59"), ("minute", "0-59"), ("hour", "0-23"), ("day", "1-31"),
                    ("month", "1-12 or Jan-Dec"), ("day of week", "0-6 or Sun-Sat"))
_NCRONTAB_CHARACTERS = re.compile(r"^[0-9A-Za-z*,/-]+$")
_NCRONTAB_NAMES = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
                   "sun", "mon", "tue", "wed", "thu", "fri", "sat"}


def ncrontab(value: str) -> str:
    """The timer schedule as the host accepts it (or a %SETTING% reference, which the host resolves)."""
    from croniter import croniter  # imported on use: only the settings check needs it

    value = value.strip()
    if len(value) > 2 and value.startswith("%") and value.endswith("%"):
        return value
    fields = value.split()
    if len(fields) != 6:
        raise ValueError("must be an NCRONTAB expression with six fields, seconds first (e.g. 0 */5 * * * *); "
                         f"got {len(fields)} field(s)")
    for i, ((name, allowed), field) in enumerate(zip(_NCRONTAB_FIELDS, fields)):
        words = {w.lower() for w in re.split(r"[^A-Za-z]+", field) if w}
        if not _NCRONTAB_CHARACTERS.match(field) or words - _NCRONTAB_NAMES:
            raise ValueError(f"{name} field {field!r} is not NCRONTAB: use numbers or names, *, ranges (a-b), "
                             "lists (a,b) and steps (*/n)")
        probe = ["0", "0", "0", "*", "*", "*"]  # one field at a time, so the message names the bad one
        probe[i] = field
        too_big = i == 5 and any(n.isdigit() and int(n) > 6 for n in re.split(r"[^0-9]+", field))
        if too_big or not croniter.is_valid(" ".join(probe), second_at_beginning=True):
            raise ValueError(f"{name} field {field!r} is out of range or malformed (allowed: {allowed})")
    return value


def ladders(value: str) -> list[list[str]]:
    """RESIZE_NODE_LADDERS as lists of node types: ';' between families, ',' between sizes."""
    return [[n.strip() for n in family.split(",") if n.strip()] for family in value.split(";") if family.strip()]


def node_type_ladders(value: str) -> str:
    families = ladders(value)
    if not families or any(not family for family in families):
        raise ValueError("must list node types: ',' between sizes, ';' between families")
    return value


def email_addresses(value: list[str]) -> list[str]:
    bad = [a for a in value if "@" not in a]
    if bad:
        raise ValueError(f"not an email address: {', '.join(bad)}")
    return value


_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^{_LABEL}(?:\.{_LABEL})+$")


def email_domains(value: list[str]) -> list[str]:
    domains = [d.strip().lower().lstrip("@").lstrip(".") for d in value]
    bad = [d for d in domains if not _DOMAIN.match(d)]
    if bad:
        raise ValueError(f"not a domain name: {', '.join(bad)}")
    return domains


def no_key_vault_reference(value: object) -> object:
    # App Service hands the literal "@Microsoft.KeyVault(...)" to the app when it cannot resolve a reference.
    if isinstance(value, str) and value.strip().startswith(KEY_VAULT_REFERENCE_PREFIX):
        raise ValueError(f"unresolved Key Vault reference {value.strip()}: {KEY_VAULT_REFERENCE_FIX}")
    return value
