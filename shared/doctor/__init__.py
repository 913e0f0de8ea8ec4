"""The doctor: is this configuration ready? Checks the settings and every connection it can.

It works with settings only half filled in: a bad value is reported and replaced by its default, and each
check (shared/doctor/checks/) says what it needs. It never prints a secret's value (at most its last four
characters), and its whole output goes through the log redaction as well. `python -m shared doctor`
(shared/commands/doctor.py) is its command line.
"""

from __future__ import annotations

from shared.doctor.checks import CHECKS
from shared.doctor.context import NOT_READY, READY, SKIPPED, Check, CheckResult, DoctorContext
from shared.doctor.report import exit_code, render_json, render_table
from shared.doctor.run import doctor, run_checks

__all__ = [
    "CHECKS",
    "NOT_READY",
    "READY",
    "SKIPPED",
    "Check",
    "CheckResult",
    "DoctorContext",
    "doctor",
    "exit_code",
    "render_json",
    "render_table",
    "run_checks",
]
