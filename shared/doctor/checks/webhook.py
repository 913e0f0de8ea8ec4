"""The webhook's Basic auth: both settings or neither (nothing to connect to)."""

from __future__ import annotations

from collections.abc import Iterable

from shared.doctor.context import NOT_READY, READY, SKIPPED, CheckResult, DoctorContext


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
