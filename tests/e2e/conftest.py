"""An agent per test: a fresh Azurite, the session's simulator (reset), and function_app in the local runner."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from localdev.azurite import start_azurite
from localdev.host import LocalFunctionsHost, load_app, read_host_json
from tests.fixtures.databricks import SIM_TOKEN

ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "databricks", "e2e-webhook-password"


@dataclass
class Agent:
    host: LocalFunctionsHost
    sim: object
    connection_string: str
    email_dir: Path

    @property
    def webhook_url(self) -> str:
        return f"{self.host.base_url}/api/databricks/webhook?code={self.host.host_key}"

    def deliver(self, job_id: int, run_id: int, **extra) -> requests.Response:
        payload = {"event_type": "jobs.on_failure", "workspace_id": self.sim.workspace_id,
                   "run": {"run_id": str(run_id)}, "job": {"job_id": str(job_id), "name": "job"}, **extra}
        return requests.post(self.webhook_url, json=payload, auth=(USER, PASSWORD), timeout=10)

    def settle(self) -> None:
        self.host.wait_idle(timeout=60)

    def poll(self) -> None:
        self.host.run_timer("poll_failures")
        self.settle()

    def decisions(self):
        from shared import runtime
        from shared.store import TableDecisionStore
        from shared.wiring import table
        from datetime import datetime, timezone

        settings = runtime.settings()
        store = TableDecisionStore(table(settings, settings.decisions_table))
        return store.recent(since=datetime(2000, 1, 1, tzinfo=timezone.utc))

    def poison_messages(self) -> list[str]:
        from azure.storage.queue import QueueClient

        queue = QueueClient.from_connection_string(self.connection_string, "job-failures-poison")
        try:
            return [base64.b64decode(m.content).decode() for m in queue.peek_messages(max_messages=32)]
        except Exception:  # noqa: BLE001 - no poison queue yet means no poison messages
            return []

    def state(self, kind: str, key: str):
        from shared import runtime
        from shared.state import TableStateStore
        from shared.wiring import table

        settings = runtime.settings()
        return TableStateStore(table(settings, settings.state_table)).get(kind, key)


@pytest.fixture
def agent(sim, monkeypatch, tmp_path):
    from shared import runtime

    azurite = start_azurite()
    env = {
        "AzureWebJobsStorage": azurite.connection_string,
        "DATABRICKS_WORKSPACE_URL": sim.url,
        "DATABRICKS_PAT_TOKEN": SIM_TOKEN,
        "DATABRICKS_WORKSPACE_ID": sim.workspace_id,
        "POLL_SCHEDULE": "0 */5 * * * *",
        "POLL_SETTLE_MINUTES": "0",  # the simulated runs end "now"; the poller is run on purpose right after
        "WEBHOOK_USERNAME": USER,
        "WEBHOOK_PASSWORD": PASSWORD,
        "EMAIL_ENABLED": "true",
        "EMAIL_TRANSPORT": "file",
        "EMAIL_FILE_DIR": str(tmp_path / "emails"),
        "EMAIL_SENDER": "agent@contoso.example",
        "EMAIL_DEFAULT_RECIPIENTS": "oncall@contoso.example",
        "MAX_RETRIES": "3",
        "CLAIM_WAIT_SECONDS": "1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    host_json = read_host_json(ROOT)
    host_json["extensions"]["queues"].update({"visibilityTimeout": "00:00:00", "maxPollingInterval": "00:00:00.100"})
    host = LocalFunctionsHost(load_app(ROOT), azurite.connection_string, host_json=host_json, env=env)
    host.start()
    try:
        yield Agent(host, sim, azurite.connection_string, tmp_path / "emails")
    finally:
        host.stop()
        azurite.stop()
        runtime.reset()
