"""The settings themselves: every problem check_settings found, one row each."""

from __future__ import annotations

from collections.abc import Iterable

from shared.doctor.context import NOT_READY, READY, CheckResult, DoctorContext
from shared.settings.docs import DOCS, describe_settings


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
