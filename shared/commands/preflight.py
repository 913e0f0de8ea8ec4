"""Before a `python -m shared` command runs: its settings, from local.settings.json and the environment,
validated all at once, with any problem printed as the doctor prints it (never a traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, MutableMapping
from typing import TextIO

from shared.exceptions import ConfigError
from shared.settings.local_file import apply_local_settings, local_settings_path, read_local_settings

# What each command needs from the settings: None when it reads none (the file is still applied, so a later
# --llm sees it), else the features (shared.settings.FEATURES) whose missing settings stop it. Every malformed
# value stops a command that reads settings.
NEEDS: dict[str, Callable[[argparse.Namespace], tuple[str, ...] | None]] = {
    "classify": lambda args: () if getattr(args, "llm", False) else None,
    "eval": lambda args: () if getattr(args, "llm", False) else None,
    "bench": lambda args: None,
    "email-test": lambda args: (),  # it reports the email settings it misses itself, with what to check
    "decisions": lambda args: ("storage",),
    "llm-report": lambda args: (),
}


def add_settings_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--settings", metavar="FILE",
                        help="a local.settings.json whose Values to use (default: ./local.settings.json if present); "
                        "variables set in the environment win")


def prepare(command: str, args: argparse.Namespace, *, environ: MutableMapping[str, str] | None = None,
            err: TextIO | None = None) -> int | None:
    """Apply the settings file to the environment and validate what `command` needs: None to go on, else the
    exit code to stop with (2) after printing the problems."""
    environ = os.environ if environ is None else environ
    err = err or sys.stderr
    path = local_settings_path(getattr(args, "settings", None))
    try:
        if path is not None:
            apply_local_settings(read_local_settings(path), environ)
    except ConfigError as exc:
        err.write(f"{exc}\n")
        return 2
    needs = NEEDS.get(command, lambda _: ())(args)
    if needs is None:
        return None
    from shared.settings import check_settings

    settings, problems = check_settings(dict(environ), require=needs)
    fatal = [p for p in problems if p.fatal]
    if not fatal:
        return None
    source = f"{path} + the environment (wins over the file)" if path else "the environment"
    err.write(problems_table(dict(environ), settings, fatal, source))
    err.write(f"\npython -m shared {command} needs these settings fixed first "
              "(python -m shared doctor also checks every connection)\n")
    return 2


def problems_table(env: dict[str, str], settings, problems, source: str) -> str:
    """The problems as rows of the doctor's table (its wording, its fixes, secrets redacted)."""
    from shared.doctor.checks.settings import check_settings_values
    from shared.doctor.context import DoctorContext
    from shared.doctor.report import render_table
    from shared.redaction import redact

    rows = list(check_settings_values(DoctorContext(env, settings, problems)))
    return redact(f"settings from: {source}") + "\n\n" + render_table(rows)
