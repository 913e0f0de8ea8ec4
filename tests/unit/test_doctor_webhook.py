"""The doctor's webhook check: in act mode a workspace without a Basic-auth credential is NOT READY."""

from __future__ import annotations

import json

from shared.doctor.checks.webhook import check_webhook
from shared.doctor.context import NOT_READY, READY, SKIPPED, DoctorContext
from shared.settings import Settings

BASE = {"databricks_workspace_url": "https://adb-1.2.azuredatabricks.net", "databricks_auth": "entra"}


def results(env=None, **values):
    settings = Settings(**{**BASE, **values})
    return list(check_webhook(DoctorContext(env=env or {}, settings=settings, problems=[])))


def test_act_mode_without_credentials_is_a_required_failure():
    (result,) = results(agent_mode="act")
    assert result.status == NOT_READY and result.required and "AGENT_MODE=act" in result.detail


def test_observe_mode_without_credentials_is_only_a_note():
    (result,) = results(agent_mode="observe")
    assert result.status == SKIPPED and not result.required


def test_per_workspace_credentials_are_read_and_reported():
    workspaces = [{"workspace_id": "1", "url": "https://a.example", "auth": "entra", "webhook_username": "a",
                   "webhook_password_secret_name": "ws1-hook"},
                  {"workspace_id": "2", "url": "https://b.example", "auth": "entra"}]
    out = results({"WS1_HOOK": "pw-123456"}, databricks_workspaces=json.dumps(workspaces),
                  webhook_username="shared", webhook_password="pw-shared-1")
    assert [r.status for r in out] == [READY, READY]
    missing = results({}, databricks_workspaces=json.dumps(workspaces), webhook_username="shared",
                      webhook_password="pw-shared-1")
    assert missing[-1].status == NOT_READY and "ws1-hook" in missing[-1].detail
