"""`python -m shared doctor`: is this configuration ready? Checks the settings and every connection it can.

Each check is a small function taking the DoctorContext and returning CheckResults (name, status, detail,
fix); a part of the agent adds its own check by adding a function to CHECKS. The doctor works with settings
only half filled in: a bad value is reported and replaced by its default, and each check says what it needs.
It never prints a secret's value (at most its last four characters), and its whole output goes through the
log redaction as well.

Exit code: 1 when any required check is NOT READY, else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import smtplib
import ssl
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from shared.exceptions import ConfigError, SecretError
from shared.redaction import redact, register_secret
from shared.secrets import SecretProvider, build_secret_provider, resolve_secret
from shared.settings import FEATURES, SettingProblem, Settings, check_settings, describe_settings
from shared.workspaces import workspace_pat

READY, NOT_READY, SKIPPED = "READY", "NOT READY", "SKIPPED"
DOCS = "docs/configuration.md"
# The queue names of function_app.py (QUEUE, POISON_QUEUE).
QUEUE_NAME = "job-failures"
POISON_QUEUE_NAME = "job-failures-poison"
QUEUE_ROLE, TABLE_ROLE = "Storage Queue Data Contributor", "Storage Table Data Contributor"


@dataclass(frozen=True)
class CheckResult:
    """One row of the doctor's table."""

    name: str
    status: str
    detail: str
    fix: str = ""
    # A NOT READY row that is not required is shown but does not make the exit code non-zero.
    required: bool = True


@dataclass
class DoctorContext:
    """What every check gets: the settings (best effort), their problems, the secrets and a timeout."""

    env: Mapping[str, str]
    settings: Settings
    problems: list[SettingProblem]
    timeout: float = 10.0
    secrets: SecretProvider | None = None
    # Options for clients that tests point at local fakes (never set in production).
    storage_kwargs: dict[str, Any] = field(default_factory=dict)
    smtp_ssl_context: ssl.SSLContext | None = None
    # Also send one 1-token chat completion to the deployment (verifies it exists; costs a few tokens).
    llm_call: bool = False

    def secret_provider(self) -> SecretProvider:
        if self.secrets is None:
            self.secrets = build_secret_provider(self.settings, env=self.env)
        return self.secrets


Check = Callable[[DoctorContext], Iterable[CheckResult]]


def shown(value: str | None) -> str:
    """How a secret appears in the doctor's output: its last four characters at most."""
    if not value:
        return "(empty)"
    return f"…{value[-4:]}" if len(value) >= 12 else "(set)"


# --- checks ---------------------------------------------------------------------------------------------

def check_settings_values(ctx: DoctorContext) -> Iterable[CheckResult]:
    """Every problem check_settings found, one row each, with the setting's own description as the hint."""
    if not ctx.problems:
        count = sum(1 for info in describe_settings() if info.name.lower() in {k.lower() for k in ctx.env})
        yield CheckResult("settings", READY, f"{count} settings read, no problems")
        return
    descriptions = {info.name.lower(): info.description for info in describe_settings()}
    for problem in ctx.problems:
        name = problem.setting.split("[")[0]
        hint = descriptions.get(name.lower())
        fix = f"{name}: {hint}" if hint else f"remove or fix the app setting {name}"
        yield CheckResult(f"setting {name}", NOT_READY, problem.message, f"{fix} (see {DOCS})", required=problem.fatal)


def check_webhook(ctx: DoctorContext) -> Iterable[CheckResult]:
    s = ctx.settings
    problems = s.problems_for("webhook")
    if problems:
        yield CheckResult("webhook auth", NOT_READY, "; ".join(map(str, problems)),
                          "set WEBHOOK_USERNAME and WEBHOOK_PASSWORD, the same as in the notification destination")
    elif s.webhook_username and s.webhook_password:
        yield CheckResult("webhook auth", READY, f"function key + Basic auth (user {s.webhook_username!r})")
    else:
        yield CheckResult(
            "webhook auth", SKIPPED, "Basic auth off: only the function key (?code=) protects the webhook",
            "optional: set WEBHOOK_USERNAME / WEBHOOK_PASSWORD and the same in the notification destination",
            required=False,
        )


def check_storage(ctx: DoctorContext) -> Iterable[CheckResult]:
    s = ctx.settings
    problems = s.problems_for("storage")
    if problems:
        yield CheckResult("storage", NOT_READY, "; ".join(map(str, problems)),
                          "locally: AzureWebJobsStorage=UseDevelopmentStorage=true and start Azurite")
        return
    yield from _check_queue(ctx)
    yield from _check_tables(ctx)


def _storage_kwargs(ctx: DoctorContext) -> dict[str, Any]:
    # Fail fast: the SDKs' default retries would keep the doctor waiting for minutes on a wrong address.
    return {"retry_total": 0, "connection_timeout": ctx.timeout, "read_timeout": ctx.timeout, **ctx.storage_kwargs}


def _check_queue(ctx: DoctorContext) -> Iterable[CheckResult]:
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.queue import QueueClient

    s = ctx.settings
    name = f"storage queue {QUEUE_NAME}"
    try:
        if s.storage_connection_string:
            connection = s.storage_connection_string.get_secret_value()
            queue = QueueClient.from_connection_string(connection, QUEUE_NAME, **_storage_kwargs(ctx))
            poison = QueueClient.from_connection_string(connection, POISON_QUEUE_NAME, **_storage_kwargs(ctx))
        else:
            credential = _azure_credential(s)
            queue = QueueClient(s.storage_queue_service_uri, QUEUE_NAME, credential=credential, **_storage_kwargs(ctx))
            poison = QueueClient(s.storage_queue_service_uri, POISON_QUEUE_NAME, credential=credential,
                                 **_storage_kwargs(ctx))
        with queue, poison:
            try:
                count = queue.get_queue_properties().approximate_message_count
                detail = f"reachable at {_host(queue.url)}; {count} message(s) waiting"
            except ResourceNotFoundError:
                detail = f"reachable at {_host(queue.url)}; the queue is created on the first webhook"
            try:
                poisoned = poison.get_queue_properties().approximate_message_count
            except ResourceNotFoundError:
                poisoned = 0
    except Exception as exc:  # noqa: BLE001 - any failure is the check's answer
        yield CheckResult(name, NOT_READY, _storage_error(exc), _storage_fix(exc, QUEUE_ROLE))
        return
    yield CheckResult(name, READY, detail)
    if poisoned:
        yield CheckResult(
            f"storage queue {POISON_QUEUE_NAME}", NOT_READY,
            f"{poisoned} message(s) the agent gave up on", "look at them (python -m shared decisions) and requeue",
            required=False,
        )


def _check_tables(ctx: DoctorContext) -> Iterable[CheckResult]:
    from azure.core.exceptions import ResourceNotFoundError
    from azure.data.tables import TableServiceClient

    s = ctx.settings
    try:
        if s.storage_connection_string:
            service = TableServiceClient.from_connection_string(
                s.storage_connection_string.get_secret_value(), **_storage_kwargs(ctx)
            )
        else:
            service = TableServiceClient(
                endpoint=s.storage_table_service_uri, credential=_azure_credential(s), **_storage_kwargs(ctx)
            )
    except Exception as exc:  # noqa: BLE001
        yield CheckResult("storage tables", NOT_READY, _storage_error(exc), _storage_fix(exc, TABLE_ROLE))
        return
    with service:
        for table in (s.decisions_table, s.state_table, s.outbox_table):
            name = f"storage table {table}"
            try:
                client = service.get_table_client(table)
                next(iter(client.query_entities("PartitionKey eq 'doctor'", results_per_page=1).by_page()), None)
                yield CheckResult(name, READY, f"reachable at {_host(service.url)}")
            except ResourceNotFoundError:
                yield CheckResult(name, READY, f"reachable at {_host(service.url)}; the table is created on first use")
            except Exception as exc:  # noqa: BLE001
                yield CheckResult(name, NOT_READY, _storage_error(exc), _storage_fix(exc, TABLE_ROLE))


def _storage_error(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    if status in (401, 403):
        return f"access denied (HTTP {status})"
    if type(exc).__name__ in ("ServiceRequestError", "ServiceResponseError"):
        return f"cannot connect: {_first_line(exc)}"
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _storage_fix(exc: Exception, role: str) -> str:
    if getattr(exc, "status_code", None) in (401, 403):
        return f"give the app's identity the {role} role on the storage account (or fix the connection string's key)"
    return ("check AzureWebJobsStorage or the service URIs (locally: start Azurite, e.g. "
            "`npx azurite --inMemoryPersistence`, for UseDevelopmentStorage=true)")


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
            yield CheckResult("Key Vault", NOT_READY, str(exc), _secret_fix(exc))
            return
        yield CheckResult("Key Vault", READY, f"{s.key_vault_url} reachable; the identity may read secrets")
        return
    for secret_name, purpose, required in needed:
        name = f"Key Vault secret {secret_name}"
        try:
            value = secrets.get(secret_name) if required else secrets.get_optional(secret_name)
        except SecretError as exc:
            yield CheckResult(name, NOT_READY, f"{purpose}: {exc}", _secret_fix(exc), required=required)
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
    if s.azure_openai_endpoint and s.azure_openai_api_key is None:
        out.append((s.azure_openai_api_key_secret_name, "Azure OpenAI key (none: Entra ID)", False))
    if s.email_enabled and s.email_transport == "smtp" and s.email_password is None and s.email_password_secret_name:
        out.append((s.email_password_secret_name, "SMTP password", True))
    if (s.email_enabled and s.email_transport == "acs" and s.acs_connection_string is None
            and s.acs_connection_string_secret_name):
        out.append((s.acs_connection_string_secret_name, "ACS connection string", not s.acs_endpoint))
    seen: set[str] = set()
    return [item for item in out if not (item[0] in seen or seen.add(item[0]))]


def _secret_fix(exc: SecretError) -> str:
    kind = type(exc).__name__
    if kind == "SecretNotFound":
        return "create the secret in the vault (or locally: set the environment variable), or fix its *_SECRET_NAME"
    if kind == "SecretAccessDenied":
        return "give the app's identity the Key Vault Secrets User role on the vault (locally: az login)"
    return "check KEY_VAULT_URL and that the vault is reachable from here"


def check_databricks(ctx: DoctorContext) -> Iterable[CheckResult]:
    s = ctx.settings
    problems = s.problems_for("databricks")
    workspaces = s.workspaces()
    if problems or not workspaces:
        yield CheckResult("Databricks", NOT_READY, "; ".join(map(str, problems)) or "no workspace configured",
                          f"set DATABRICKS_WORKSPACE_URL (or DATABRICKS_WORKSPACES), see {DOCS}")
        if not workspaces:
            return
    for workspace in workspaces:
        yield _check_workspace(ctx, workspace)


def _check_workspace(ctx: DoctorContext, workspace: Any) -> CheckResult:
    from shared.databricks.client import RetryPolicy, build_jobs_api
    from shared.databricks.errors import (
        DatabricksConnectionError,
        DatabricksError,
        PermissionDenied,
        TokenUnavailable,
        Unauthenticated,
    )

    name = f"Databricks {workspace.workspace_id or _host(workspace.url)}"
    try:
        pat = workspace_pat(workspace, ctx.secret_provider())
    except (SecretError, ConfigError) as exc:
        return CheckResult(name, NOT_READY, f"no PAT: {exc}",
                           "store the PAT in the secret it names (Key Vault, or the environment locally), or use "
                           "DATABRICKS_AUTH=entra")
    how = f"PAT {shown(pat)}" if pat else "Entra ID (managed identity)"
    retry = RetryPolicy(retries=0, budget=ctx.timeout)
    try:
        client = build_jobs_api(workspace, timeout=ctx.timeout, pat_token=pat,
                                azure_client_id=ctx.settings.azure_client_id, retry=retry)
        try:
            # runs/list from now on: one cheap authenticated GET that returns nothing.
            next(iter(client.list_runs(start_time_from=int(time.time() * 1000))), None)
        finally:
            client.close()
    except (Unauthenticated, PermissionDenied) as exc:
        # runs/list needs no permission beyond being a workspace user: a refusal here is about the credential.
        return CheckResult(name, NOT_READY, f"{workspace.url} refused the credentials ({how}): {exc}",
                           "use a valid, unexpired PAT, or add the managed identity to the workspace as a service "
                           "principal")
    except TokenUnavailable as exc:
        return CheckResult(name, NOT_READY, f"no Entra ID token for Databricks: {exc}",
                           "check AZURE_CLIENT_ID and the managed identity (locally: az login)")
    except DatabricksConnectionError as exc:
        return CheckResult(name, NOT_READY, f"cannot reach {workspace.url} ({how}): {exc}",
                           "check DATABRICKS_WORKSPACE_URL and the network path to the workspace")
    except (DatabricksError, ConfigError) as exc:
        return CheckResult(name, NOT_READY, f"{workspace.url} ({how}): {exc}",
                           "check the workspace URL and credentials")
    return CheckResult(name, READY, f"{workspace.url}: Jobs API answered ({how})")


def check_openai(ctx: DoctorContext) -> Iterable[CheckResult]:
    s = ctx.settings
    problems = s.problems_for("llm")
    if problems:
        yield CheckResult("Azure OpenAI", NOT_READY, "; ".join(map(str, problems)),
                          "set both AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_DEPLOYMENT, or neither (rules only)")
        return
    if not s.azure_openai_endpoint:
        yield CheckResult("Azure OpenAI", SKIPPED, "AZURE_OPENAI_ENDPOINT not set: rules only, no LLM",
                          "optional: set AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_DEPLOYMENT", required=False)
        return
    try:
        key = resolve_secret(s, ctx.secret_provider(), "azure_openai_api_key")
    except SecretError as exc:
        yield CheckResult("Azure OpenAI", NOT_READY, f"API key: {exc}", _secret_fix(exc))
        return
    import openai

    auth: dict[str, Any]
    if key:
        auth, how = {"api_key": key}, f"key {shown(key)}"
    else:
        from azure.identity import get_bearer_token_provider

        auth = {"azure_ad_token_provider": get_bearer_token_provider(
            _azure_credential(s), "https://cognitiveservices.azure.com/.default")}
        how = "Entra ID"
    try:
        client = openai.AzureOpenAI(azure_endpoint=s.azure_openai_endpoint, api_version=s.azure_openai_api_version,
                                    max_retries=0, timeout=ctx.timeout, **auth)
        if ctx.llm_call:
            client.chat.completions.create(model=s.azure_openai_deployment, max_tokens=1,
                                           messages=[{"role": "user", "content": "ping"}])
            answered = f"deployment {s.azure_openai_deployment!r} answered a 1-token call"
        else:
            count = len(list(client.models.list().data))
            answered = (f"{count} models listed; deployment {s.azure_openai_deployment!r} not called "
                        "(--llm-call checks it)")
    except openai.AuthenticationError as exc:
        yield CheckResult("Azure OpenAI", NOT_READY, f"credentials refused ({how}): HTTP {exc.status_code}",
                          "check AZURE_OPENAI_API_KEY (or give the identity Cognitive Services OpenAI User)")
        return
    except openai.PermissionDeniedError as exc:
        yield CheckResult("Azure OpenAI", NOT_READY, f"permission denied ({how}): HTTP {exc.status_code}",
                          "give the app's identity the Cognitive Services OpenAI User role")
        return
    except openai.APIConnectionError as exc:
        yield CheckResult("Azure OpenAI", NOT_READY, f"cannot reach {s.azure_openai_endpoint}: {type(exc).__name__}",
                          "check AZURE_OPENAI_ENDPOINT")
        return
    except openai.NotFoundError as exc:
        what = f"deployment {s.azure_openai_deployment!r}" if ctx.llm_call else "the models list"
        yield CheckResult("Azure OpenAI", NOT_READY, f"{what} not found at {s.azure_openai_endpoint} (HTTP 404)",
                          "check AZURE_OPENAI_DEPLOYMENT, AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_VERSION")
        return
    except openai.APIStatusError as exc:
        yield CheckResult("Azure OpenAI", NOT_READY, f"{s.azure_openai_endpoint} answered HTTP {exc.status_code}",
                          "check AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_VERSION")
        return
    except Exception as exc:  # noqa: BLE001 - e.g. no Entra credential: the check's answer
        yield CheckResult("Azure OpenAI", NOT_READY, f"{type(exc).__name__}: {_first_line(exc)}",
                          "check the Azure OpenAI settings and credentials")
        return
    yield CheckResult("Azure OpenAI", READY, f"{s.azure_openai_endpoint} ({how}): {answered}")


def check_email(ctx: DoctorContext) -> Iterable[CheckResult]:
    s = ctx.settings
    if not s.email_enabled:
        yield CheckResult("email", SKIPPED, "EMAIL_ENABLED is off: notifications are only recorded",
                          "optional: EMAIL_ENABLED=true and the EMAIL_TRANSPORT settings", required=False)
        return
    problems = s.problems_for("email")
    if problems:
        yield CheckResult(f"email ({s.email_transport})", NOT_READY, "; ".join(map(str, problems)),
                          f"see the Email section of {DOCS}")
        return
    if s.email_transport == "smtp":
        yield _check_smtp(ctx)
    elif s.email_transport == "acs":
        how = "ACS_ENDPOINT with the app's identity" if s.acs_endpoint else "a connection string"
        yield CheckResult("email (acs)", READY, f"settings present ({how}); nothing sent",
                          "send a test: python -m shared email-test", required=False)
    elif s.email_transport == "file":
        directory = Path(s.email_file_dir or ".")
        try:
            directory.mkdir(parents=True, exist_ok=True)
            writable = os.access(directory, os.W_OK)
        except OSError as exc:
            writable, directory = False, Path(f"{directory} ({exc.strerror})")
        yield (CheckResult("email (file)", READY, f"emails are written to {directory}") if writable else
               CheckResult("email (file)", NOT_READY, f"cannot write to {directory}", "fix EMAIL_FILE_DIR"))
    else:
        yield CheckResult(f"email ({s.email_transport})", READY, "notifications are kept in the outbox table only")


def _check_smtp(ctx: DoctorContext) -> CheckResult:
    s = ctx.settings
    name = "email (smtp)"
    where = f"{s.email_smtp_host}:{s.email_smtp_port}"
    try:
        password = resolve_secret(s, ctx.secret_provider(), "email_password")
    except (SecretError, ConfigError) as exc:
        return CheckResult(name, NOT_READY, f"SMTP password: {exc}", "set EMAIL_PASSWORD or its secret")
    context = ctx.smtp_ssl_context or ssl.create_default_context()
    steps = []
    try:
        if s.email_smtp_security == "ssl":
            server: smtplib.SMTP = smtplib.SMTP_SSL(s.email_smtp_host, s.email_smtp_port, timeout=ctx.timeout,
                                                    context=context)
        else:
            server = smtplib.SMTP(s.email_smtp_host, s.email_smtp_port, timeout=ctx.timeout)
        with server:
            server.ehlo()
            steps.append("EHLO")
            if s.email_smtp_security == "starttls":
                server.starttls(context=context)
                server.ehlo()
                steps.append("STARTTLS")
            username = s.email_smtp_username or s.email_sender
            if password and username:
                server.login(username, password)
                steps.append(f"login as {username}")
    except smtplib.SMTPAuthenticationError as exc:
        return CheckResult(name, NOT_READY, f"{where}: login refused ({exc.smtp_code})",
                           "check EMAIL_SMTP_USERNAME and the SMTP password")
    except (smtplib.SMTPException, OSError) as exc:
        done = f" after {', '.join(steps)}" if steps else ""
        return CheckResult(name, NOT_READY, f"{where}{done}: {type(exc).__name__}: {_first_line(exc)}",
                           "check EMAIL_SMTP_HOST, EMAIL_SMTP_PORT and EMAIL_SMTP_SECURITY")
    return CheckResult(name, READY, f"{where}: {', '.join(steps)} ok; nothing sent")


CHECKS: tuple[Check, ...] = (
    check_settings_values,
    check_webhook,
    check_storage,
    check_key_vault,
    check_databricks,
    check_openai,
    check_email,
)


# --- running and printing -------------------------------------------------------------------------------

def run_checks(ctx: DoctorContext, checks: Iterable[Check] = CHECKS) -> list[CheckResult]:
    """Every check's rows; a check that crashes becomes a NOT READY row instead of stopping the others."""
    results: list[CheckResult] = []
    for check in checks:
        try:
            results.extend(check(ctx))
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
            name = check.__name__.removeprefix("check_").replace("_", " ")
            results.append(CheckResult(name, NOT_READY, f"the check itself failed: {type(exc).__name__}: {exc}",
                                       "report this as a bug of the doctor"))
    return results


def exit_code(results: Iterable[CheckResult]) -> int:
    return 1 if any(r.status == NOT_READY and r.required for r in results) else 0


def render_table(results: list[CheckResult]) -> str:
    """The table: CHECK, STATUS, DETAIL, and the fix on the line below a row that is not ready."""
    width = max([len("CHECK"), *(len(r.name) for r in results)]) + 2
    status_width = len(NOT_READY) + 12
    lines = [f"{'CHECK':<{width}}{'STATUS':<{status_width}}DETAIL"]
    for r in results:
        status = r.status if r.required or r.status != NOT_READY else f"{r.status} (optional)"
        lines.append(f"{r.name:<{width}}{status:<{status_width}}{r.detail}")
        if r.fix and r.status != READY:
            lines.append(f"{'':<{width + status_width}}fix: {r.fix}")
    not_ready = [r for r in results if r.status == NOT_READY and r.required]
    lines.append("")
    lines.append(f"{len(not_ready)} required check(s) NOT READY" if not_ready else "everything required is READY")
    return "\n".join(redact(line) for line in lines) + "\n"


def doctor(
    env: Mapping[str, str],
    *,
    out: TextIO | None = None,
    as_json: bool = False,
    timeout: float = 10.0,
    secrets: SecretProvider | None = None,
    checks: Iterable[Check] = CHECKS,
    storage_kwargs: dict[str, Any] | None = None,
    smtp_ssl_context: ssl.SSLContext | None = None,
    llm_call: bool = False,
    source: str = "",
) -> int:
    """Check the configuration in `env`, print the table (or JSON) to `out`, return the exit code."""
    out = out or sys.stdout
    settings, problems = check_settings(env, require=FEATURES)
    for value in settings.secret_values():
        register_secret(value)
    ctx = DoctorContext(env, settings, problems, timeout=timeout, secrets=secrets,
                        storage_kwargs=dict(storage_kwargs or {}), smtp_ssl_context=smtp_ssl_context,
                        llm_call=llm_call)
    try:
        results = run_checks(ctx, checks)
    finally:
        if secrets is None and ctx.secrets is not None:
            ctx.secrets.close()
    if as_json:
        out.write(redact(json.dumps([asdict(r) for r in results], indent=2)) + "\n")
    else:
        if source:
            out.write(redact(f"settings from: {source}") + "\n\n")
        out.write(render_table(results))
    return exit_code(results)


def read_settings_file(path: str | Path) -> dict[str, str]:
    """The Values of a local.settings.json (ConfigError when it is not one)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("Values", {}), dict):
        raise ConfigError(f"{path}: not a local.settings.json (no Values object)")
    if data.get("IsEncrypted"):
        raise ConfigError(f"{path}: IsEncrypted is true; decrypt it first (func settings decrypt)")
    return {str(k): "" if v is None else str(v) for k, v in data.get("Values", {}).items()}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--settings", metavar="FILE",
                        help="a local.settings.json whose Values to check (default: ./local.settings.json if present)")
    parser.add_argument("--ignore-environment", action="store_true",
                        help="check only the settings file, not the process environment")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per connection check (default 10)")
    parser.add_argument("--llm-call", action="store_true",
                        help="also send a 1-token chat completion to the Azure OpenAI deployment (costs a few tokens)")
    parser.add_argument("--list-settings", action="store_true",
                        help=f"print the settings table (markdown, as in {DOCS}) and exit")
    parser.add_argument("--example-settings", action="store_true",
                        help="print local.settings.json.example (every setting, described) and exit")


def run(args: argparse.Namespace) -> int:
    if args.list_settings:
        sys.stdout.write(settings_markdown())
        return 0
    if args.example_settings:
        sys.stdout.write(example_settings())
        return 0
    env: dict[str, str] = {}
    sources = []
    path = args.settings or ("local.settings.json" if Path("local.settings.json").exists() else None)
    if path:
        try:
            env.update(read_settings_file(path))
        except ConfigError as exc:
            sys.stderr.write(f"{exc}\n")
            return 2
        sources.append(str(path))
    if not args.ignore_environment:
        env.update(os.environ)
        sources.append("the environment (wins over the file)" if path else "the environment")
    return doctor(env, as_json=args.json, timeout=args.timeout, llm_call=args.llm_call,
                  source=" + ".join(sources) or "nothing")


def settings_markdown() -> str:
    """The configuration table of docs/configuration.md, generated from the Settings fields."""
    lines: list[str] = []
    section = None
    for info in describe_settings():
        if info.section != section:
            section = info.section
            lines += ["", f"### {section}", "", "| Setting | Default | Description |", "|---|---|---|"]
        default = f"`{info.default}`" if info.default else "—"
        secret = " **Secret.**" if info.secret else ""
        description = info.description.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
        lines.append(f"| `{info.name}` | {default.replace('|', chr(92) + '|')} | {description}{secret} |")
    return "\n".join(lines).lstrip("\n") + "\n"


# local.settings.json.example: values that differ from the defaults for a local run (Azurite, no email sent).
LOCAL_VALUES = {
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    "DATABRICKS_AUTH": "pat",
    "EMAIL_TRANSPORT": "file",
    "EMAIL_FILE_DIR": ".local/emails",
}
# Functions host settings the example also needs (not read by the agent itself).
HOST_VALUES = {"FUNCTIONS_WORKER_RUNTIME": ("python", "Functions host: the language worker (local runs).")}
# Identity-based storage settings are for Azure only: next to a connection string they would only confuse.
AZURE_ONLY = ("AzureWebJobsStorage__accountName", "AzureWebJobsStorage__queueServiceUri",
              "AzureWebJobsStorage__tableServiceUri")


def example_settings() -> str:
    """local.settings.json.example: every setting in Values (local defaults) and described in _comments."""
    values: dict[str, str] = {name: value for name, (value, _) in HOST_VALUES.items()}
    comments: dict[str, str] = {name: text for name, (_, text) in HOST_VALUES.items()}
    for info in describe_settings():
        default = f" Default: {info.default}." if info.default else ""
        secret = " Secret: never commit a real value." if info.secret else ""
        comments[info.name] = f"{info.description}{default}{secret}"
        if info.name in AZURE_ONLY:
            comments[info.name] += " Azure only: leave out locally."
            continue
        values[info.name] = LOCAL_VALUES.get(info.name, info.default)
    document = {
        "IsEncrypted": False,
        "_comment": "Copy to local.settings.json and fill in. Empty values count as unset. _comments describes "
        f"each setting (the host ignores it); {DOCS} has the same table. Check with: python -m shared doctor",
        "Values": values,
        "_comments": comments,
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _azure_credential(s: Settings) -> Any:
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if s.azure_client_id:
        return ManagedIdentityCredential(client_id=s.azure_client_id)
    return DefaultAzureCredential()


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
