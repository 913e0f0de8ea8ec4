"""The doctor's checks, one module per part of the agent; CHECKS is their order in the table.

A check takes the DoctorContext and yields CheckResults (name, status, detail, fix); a part of the agent
adds its own check by adding a function to CHECKS. Each check says what it needs, so it works with settings
only half filled in, and never shows a secret's value (at most its last four characters, `shown`).
"""

from __future__ import annotations

from shared.doctor.checks.azure_openai import check_openai
from shared.doctor.checks.databricks import check_databricks
from shared.doctor.checks.email import check_email
from shared.doctor.checks.feedback import check_feedback
from shared.doctor.checks.key_vault import check_key_vault
from shared.doctor.checks.settings import check_settings_values
from shared.doctor.checks.storage import check_storage
from shared.doctor.checks.webhook import check_webhook
from shared.doctor.context import Check

CHECKS: tuple[Check, ...] = (
    check_settings_values,
    check_webhook,
    check_storage,
    check_key_vault,
    check_databricks,
    check_openai,
    check_email,
    check_feedback,
)

__all__ = [
    "CHECKS",
    "check_databricks",
    "check_email",
    "check_feedback",
    "check_key_vault",
    "check_openai",
    "check_settings_values",
    "check_storage",
    "check_webhook",
]
