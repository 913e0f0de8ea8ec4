"""The settings' documentation, generated from the Settings fields: the table of docs/configuration.md and
local.settings.json.example (`python -m shared doctor --list-settings / --example-settings`).

Tests compare both files with what this module generates, so the docs cannot drift from the code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from shared.settings.model import Settings, env_name, is_secret

DOCS = "docs/configuration.md"

# The first field of each section, in declaration order (the table in docs/configuration.md follows it).
_SECTIONS = (
    ("databricks_workspace_url", "Databricks"),
    ("agent_mode", "Decisions and actions"),
    ("poll_schedule", "Timer (poller)"),
    ("poll_time_budget_seconds", "Poller at scale and poison"),
    ("webhook_username", "Webhook"),
    ("storage_connection_string", "Storage"),
    ("key_vault_url", "Secrets"),
    ("azure_openai_endpoint", "Azure OpenAI"),
    ("email_enabled", "Email"),
    ("feedback_signing_key", "Feedback and learning"),
    ("teams_webhook_secret_name", "Escalation channels"),
    ("incidents_enabled", "Incidents"),
    ("log_level", "Logging"),
    ("applicationinsights_connection_string", "Telemetry"),
)


@dataclass(frozen=True)
class SettingInfo:
    """One row of the configuration table."""

    section: str
    name: str
    default: str
    description: str
    secret: bool


def describe_settings() -> list[SettingInfo]:
    """Every setting with its section, environment name, default and description, in declaration order."""
    starts = dict(_SECTIONS)
    section = _SECTIONS[0][1]
    rows = []
    for name, field in Settings.model_fields.items():
        section = starts.get(name, section)
        default = field.get_default(call_default_factory=True)
        if isinstance(default, list):
            shown = ",".join(default)
        elif isinstance(default, bool):
            shown = str(default).lower()
        else:
            shown = "" if default is None else str(default)
        rows.append(SettingInfo(section, env_name(name), shown, field.description or "", is_secret(name)))
    return rows


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
    "EMAIL_TRANSPORT": "file",
    "EMAIL_FILE_DIR": ".local/emails",
}
# Functions host settings the example also needs (not read by the agent itself).
HOST_VALUES = {"FUNCTIONS_WORKER_RUNTIME": ("python", "Functions host: the language worker (local runs).")}
# Identity-based storage settings are for Azure only: next to a connection string they would only confuse.
# WEBSITE_HOSTNAME is set by the host itself (an empty value in local.settings.json would hide func start's).
AZURE_ONLY = ("AzureWebJobsStorage__accountName", "AzureWebJobsStorage__queueServiceUri",
              "AzureWebJobsStorage__tableServiceUri", "WEBSITE_HOSTNAME")


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
