"""The webhook's Basic auth: both settings or neither; in act mode, a credential for every workspace."""

from __future__ import annotations

from collections.abc import Iterable

from shared.doctor.context import NOT_READY, READY, SKIPPED, CheckResult, DoctorContext
from shared.exceptions import SecretError
from shared.webhook_auth import uncovered_workspaces, webhook_credentials

_FIX = ("set WEBHOOK_USERNAME and WEBHOOK_PASSWORD (or webhook_username and webhook_password_secret_name per "
        "workspace in DATABRICKS_WORKSPACES), the same as in the notification destination")


def check_webhook(ctx: DoctorContext) -> Iterable[CheckResult]:
    s = ctx.settings
    problems = s.problems_for("webhook")
    if problems:
        yield CheckResult("webhook auth", NOT_READY, "; ".join(map(str, problems)), _FIX)
        return
    try:
        uncovered = uncovered_workspaces(s)
        per_workspace = [w for w in s.workspaces() if w.webhook_username]
    except ValueError as exc:  # DATABRICKS_WORKSPACES itself is reported by the settings check
        yield CheckResult("webhook auth", SKIPPED, f"workspaces not readable: {exc}", required=False)
        return
    if uncovered and s.agent_mode == "act":
        yield CheckResult(
            "webhook auth", NOT_READY,
            f"AGENT_MODE=act and no Basic-auth credential for workspace {', '.join(uncovered)}: the function key "
            "alone would let whoever holds it trigger reruns, so the webhook answers 503 until one is set", _FIX)
    elif uncovered:
        yield CheckResult(
            "webhook auth", SKIPPED, "Basic auth off: only the function key (?code=) protects the webhook "
            "(accepted in observe mode only)", "optional: " + _FIX, required=False,
        )
    else:
        who = ", ".join(f"{w.webhook_username!r} for {w.workspace_id}" for w in per_workspace)
        shared = f"user {s.webhook_username!r}" if s.webhook_username else ""
        credentials = "; ".join(p for p in (shared, who) if p)
        yield CheckResult("webhook auth", READY, f"function key + Basic auth ({credentials})")
    if any(w.webhook_password_secret_name for w in s.workspaces()):
        try:
            webhook_credentials(s, ctx.secret_provider())
        except SecretError as exc:
            yield CheckResult("webhook passwords", NOT_READY, str(exc),
                              "create each webhook_password_secret_name secret (locally: its environment variable)")
        else:
            yield CheckResult("webhook passwords", READY, "every per-workspace webhook password read")
