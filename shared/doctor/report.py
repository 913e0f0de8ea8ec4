"""How the doctor shows its results: a table (the fix under each row that is not ready) or JSON, and its exit code.

Everything printed goes through the log redaction as well, in case a check quoted a secret.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict

from shared.doctor.context import NOT_READY, READY, CheckResult
from shared.redaction import redact


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


def render_json(results: list[CheckResult]) -> str:
    """The results as a JSON list of CheckResult objects."""
    return redact(json.dumps([asdict(r) for r in results], indent=2)) + "\n"
