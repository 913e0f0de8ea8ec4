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


def workspace_id(value: object) -> str | None:
    """Databricks workspace ids are numbers (the webhook carries one); kept as their decimal string."""
    if value is None:
        return None
    if isinstance(value, bool) or not str(value).strip().isdigit():
        raise ValueError("must be the numeric workspace id (the number after ?o= in the workspace URL)")
    return str(int(str(value).strip()))


def ncrontab(value: str) -> str:
    if not (value.startswith("%") and value.endswith("%")) and len(value.split()) != 6:
        raise ValueError("must be an NCRONTAB expression with six fields, seconds first (e.g. 0 */5 * * * *)")
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
