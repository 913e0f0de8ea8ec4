"""Webhooks from the simulated workspace: the documented jobs.on_failure payload, POSTed from a thread when a
run of a job with webhook_notifications.on_failure ends unsuccessfully.

A mixin of DatabricksSimulator; expects `_lock`, `workspace` and `workspace_id`.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from typing import Any

from localdev.databricks_sim.model import JobRun
from localdev.databricks_sim.state import Workspace


class Webhooks:
    """send_webhooks_to / webhook_deliveries / flush_webhooks on the simulator object."""

    _lock: threading.Lock
    workspace: Workspace
    workspace_id: str
    _webhook: tuple[str, str | None, str | None] | None
    _deliveries: list[dict[str, Any]]
    _senders: list[threading.Thread]

    def send_webhooks_to(self, url: str, *, username: str | None = None, password: str | None = None) -> None:
        """POST the documented jobs.on_failure payload there whenever a run of a job with
        webhook_notifications.on_failure ends unsuccessfully (Basic auth when a username is given)."""
        with self._lock:
            self._webhook = (url, username, password)

    @property
    def webhook_deliveries(self) -> list[dict[str, Any]]:
        """Each webhook sent: payload and answer status (or error)."""
        with self._lock:
            return list(self._deliveries)

    def flush_webhooks(self, timeout: float = 10.0) -> None:
        """Wait until every webhook started so far has been delivered (or failed)."""
        with self._lock:
            senders, self._senders = self._senders, []
        for sender in senders:
            sender.join(timeout)

    def _run_finished(self, run: JobRun) -> None:
        # Called under the workspace lock: deliver from a thread so the API answer is never held up.
        target = self._webhook
        if target is None or run.job_id is None or run.result_state in ("SUCCESS", "SUCCESS_WITH_FAILURES"):
            return
        settings = self.workspace.jobs.get(run.job_id, {}).get("settings", {})
        if not settings.get("webhook_notifications", {}).get("on_failure"):
            return
        if run.result_state == "CANCELED" and settings.get("notification_settings", {}).get("no_alert_for_canceled_runs"):
            return
        payload = {
            "event_type": "jobs.on_failure", "workspace_id": self.workspace_id,
            "run": {"run_id": str(run.run_id)}, "job": {"job_id": str(run.job_id), "name": settings.get("name", "")},
        }
        sender = threading.Thread(target=self._deliver, args=(target, payload), daemon=True)
        with self._lock:
            self._senders.append(sender)
        sender.start()

    def _deliver(self, target: tuple[str, str | None, str | None], payload: dict[str, Any]) -> None:
        url, username, password = target
        request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        if username:
            basic = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            request.add_header("Authorization", f"Basic {basic}")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback URL from the test
                result: dict[str, Any] = {"payload": payload, "status": answer.status}
        except urllib.error.HTTPError as exc:
            result = {"payload": payload, "status": exc.code}
        except OSError as exc:
            result = {"payload": payload, "error": str(exc)}
        with self._lock:
            self._deliveries.append(result)

