"""Running the doctor: build the settings (best effort), run every check, print the results."""

from __future__ import annotations

import ssl
import sys
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from shared.doctor.checks import CHECKS
from shared.doctor.context import NOT_READY, Check, CheckResult, DoctorContext
from shared.doctor.report import exit_code, render_json, render_table
from shared.redaction import redact, register_secret
from shared.secrets import SecretProvider
from shared.settings import FEATURES
from shared.settings.check import check_settings


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
        out.write(render_json(results))
    else:
        if source:
            out.write(redact(f"settings from: {source}") + "\n\n")
        out.write(render_table(results))
    return exit_code(results)
