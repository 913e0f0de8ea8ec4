"""Key Vault: every secret the configuration would read from the vault, read with the app's identity."""

from __future__ import annotations

from collections.abc import Iterable

from shared.doctor.context import NOT_READY, READY, SKIPPED, CheckResult, DoctorContext, shown
from shared.exceptions import SecretError
from shared.settings import Settings


def check_key_vault(ctx: DoctorContext) -> Iterable[CheckResult]:
    s = ctx.settings
    if not s.key_vault_url:
        yield CheckResult(
            "Key Vault", SKIPPED, "KEY_VAULT_URL not set: secrets come from the app settings / environment",
            "in Azure: set KEY_VAULT_URL to read *_SECRET_NAME secrets with the app's identity", required=False,
        )
        return
    secrets = ctx.secret_provider()
    needed = _needed_secrets(s)
    if not needed:
        # A read of a name that does not exist proves the vault is reachable and the identity may read it
        # (without the role, Key Vault answers 403 whatever the name).
        try:
            secrets.get_optional("doctor-probe")
        except SecretError as exc:
            yield CheckResult("Key Vault", NOT_READY, str(exc), secret_fix(exc))
            return
        yield CheckResult("Key Vault", READY, f"{s.key_vault_url} reachable; the identity may read secrets")
        return
    for secret_name, purpose, required in needed:
        name = f"Key Vault secret {secret_name}"
        try:
            value = secrets.get(secret_name) if required else secrets.get_optional(secret_name)
        except SecretError as exc:
            yield CheckResult(name, NOT_READY, f"{purpose}: {exc}", secret_fix(exc), required=required)
            continue
        if value is None:
            yield CheckResult(name, SKIPPED, f"{purpose}: not in the vault", "optional", required=False)
        else:
            yield CheckResult(name, READY, f"{purpose}: read ({shown(value)})")


def _needed_secrets(s: Settings) -> list[tuple[str, str, bool]]:
    """(secret name, what it is for, required) for every secret the configuration would read from the vault."""
    out: list[tuple[str, str, bool]] = []
    for workspace in s.workspaces():
        if workspace.auth == "pat" and workspace.pat_token is None and workspace.pat_secret_name:
            out.append((workspace.pat_secret_name, f"PAT of {workspace.workspace_id or workspace.url}", True))
        if workspace.auth == "oauth-m2m" and workspace.client_secret is None and workspace.client_secret_name:
            out.append((workspace.client_secret_name,
                        f"OAuth secret of {workspace.workspace_id or workspace.url}", True))
    if s.azure_openai_endpoint and s.azure_openai_api_key is None:
        out.append((s.azure_openai_api_key_secret_name, "Azure OpenAI key (none: Entra ID)", False))
    if s.email_enabled and s.email_transport == "smtp" and s.email_password is None and s.email_password_secret_name:
        out.append((s.email_password_secret_name, "SMTP password", True))
    if (s.email_enabled and s.email_transport == "acs" and s.acs_connection_string is None
            and s.acs_connection_string_secret_name):
        out.append((s.acs_connection_string_secret_name, "ACS connection string", not s.acs_endpoint))
    seen: set[str] = set()
    return [item for item in out if not (item[0] in seen or seen.add(item[0]))]


def secret_fix(exc: SecretError) -> str:
    kind = type(exc).__name__
    if kind == "SecretNotFound":
        return "create the secret in the vault (or locally: set the environment variable), or fix its *_SECRET_NAME"
    if kind == "SecretAccessDenied":
        return "give the app's identity the Key Vault Secrets User role on the vault (locally: az login)"
    return "check KEY_VAULT_URL and that the vault is reachable from here"
