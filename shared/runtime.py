"""What function_app.py calls: one function per trigger, with the worker's settings and dependencies.

Settings and dependencies are built on first use and kept for the worker's life (one place, no
module-level clients at import). The webhook path imports only what it needs.
"""

from __future__ import annotations

import logging
import threading
from functools import partial
from typing import TYPE_CHECKING

from shared.redaction import install_redaction, uninstall_redaction
from shared.settings import Settings, load_settings
from shared.webhook import WebhookAnswer, handle_webhook

if TYPE_CHECKING:
    from shared.pipeline import PipelineDeps
    from shared.poller import PollReport
    from shared.worker import Handled

log = logging.getLogger(__name__)
# Before anything can log: even "the agent is misconfigured" must not print a secret it quotes.
install_redaction()

# Must equal host.json extensions.queues.maxDequeueCount (a unit test checks it).
MAX_DEQUEUE_COUNT = 5

_lock = threading.Lock()
_settings: Settings | None = None
_deps: PipelineDeps | None = None


def check_at_start() -> list[str]:
    """Check every setting when the worker loads the app, so a misconfiguration is in the log (as the doctor's
    table) before the first webhook finds it; the names of the settings at fault. Never raises, caches nothing."""
    import os

    from shared.settings import check_settings

    try:
        env = dict(os.environ)
        checked, problems = check_settings(env)
        fatal = [p for p in problems if p.fatal]
        if fatal:
            from shared.commands.preflight import problems_table

            log.error("the agent's settings have problems; its functions answer 503 (webhook) or retry (queue) "
                      "until they are fixed:\n%s", problems_table(env, checked, fatal, "the app settings"))
        return [p.setting for p in fatal]
    except Exception:  # noqa: BLE001 - a check at start must never keep the app from loading
        log.exception("could not check the settings at start")
        return []


def settings() -> Settings:
    """The worker's settings, validated once (ConfigError lists every problem)."""
    global _settings
    with _lock:
        if _settings is None:
            _settings = load_settings()
            _configure_logging(_settings)
        return _settings


def deps() -> PipelineDeps:
    """The worker's pipeline dependencies, built once."""
    global _deps
    current = settings()
    with _lock:
        if _deps is None:
            from shared.wiring import build_deps

            _deps = build_deps(current)
        return _deps


def reset() -> None:
    """Forget settings and dependencies (tests and the local runner change the environment)."""
    global _settings, _deps, _secrets
    with _lock:
        _settings, _deps, _secrets = None, None, None
    uninstall_redaction()
    install_redaction()


def webhook(body: bytes, headers: dict[str, str]) -> WebhookAnswer:
    """The HTTP function's logic."""
    from shared.exceptions import ConfigError

    try:
        current = settings()
    except ConfigError as exc:
        log.error("webhook refused: the agent is misconfigured: %s", exc)
        return WebhookAnswer(503, "the agent is misconfigured; see its logs")
    from shared.exceptions import SecretError
    from shared.webhook_auth import webhook_credentials

    try:
        credentials = webhook_credentials(current, _webhook_secrets(current))
    except SecretError as exc:
        log.error("webhook refused: a webhook password could not be read: %s", exc)
        return WebhookAnswer(503, "the agent cannot read its webhook credentials now; try again")
    return handle_webhook(body, headers, credentials=credentials, check_workspace=partial(_workspace_key, current),
                          require_credentials=current.agent_mode == "act")


def _workspace_key(current: Settings, workspace_id: str | None) -> str:
    from shared.workspaces import resolve_workspace, workspace_key

    return workspace_key(resolve_workspace(current, workspace_id))


_secrets = None


def _webhook_secrets(current: Settings):
    """The secret provider for per-workspace webhook passwords: built on first need, kept (it caches)."""
    global _secrets
    if not any(w.webhook_password_secret_name for w in current.workspaces()):
        return None
    with _lock:
        if _secrets is None:
            from shared.secrets import build_secret_provider

            _secrets = build_secret_provider(current)
        return _secrets


def handle(body: str, *, message_id: str, dequeue_count: int) -> Handled:
    """The queue function's logic."""
    from shared.worker import handle_message

    return handle_message(body, message_id=message_id, dequeue_count=dequeue_count,
                          max_dequeue_count=MAX_DEQUEUE_COUNT, deps=deps())


def handle_unsure(body: str, *, message_id: str, dequeue_count: int) -> Handled:
    """The LLM queue function's logic (shared/handover.py)."""
    from shared.worker import handle_handover_message

    return handle_handover_message(body, message_id=message_id, dequeue_count=dequeue_count,
                                   max_dequeue_count=MAX_DEQUEUE_COUNT, deps=deps())


def poll() -> PollReport:
    """The timer function's logic."""
    from shared.poller import poll as run_poll

    report = run_poll(deps())
    log.info("poll: %d enqueued, %d followed, %d reverted, %d errors", len(report.enqueued), len(report.followed),
             len(report.reverted), len(report.errors))
    return report


def report(query: dict[str, str]) -> tuple[int, str, str]:
    """GET /api/report: (status, body, content type)."""
    from shared.decision import utcnow
    from shared.exceptions import ConfigError
    from shared.report.sources import page_request, report_from_storage

    try:
        current = settings()
    except ConfigError as exc:
        log.error("report refused: the agent is misconfigured: %s", exc)
        return 503, "the agent is misconfigured; see its logs", "text/plain"
    return page_request(query, now=utcnow(),
                        build=lambda since, until: report_from_storage(current, since=since, until=until))


# The Azure SDK logs every request and response, headers included, at INFO (about 10 lines per Table call):
# below DEBUG that is noise, and each record costs the redaction filter and Application Insights.
_SDK_REQUEST_LOGGER = "azure.core.pipeline.policies.http_logging_policy"


def quiet_sdk_request_logs(level: str) -> None:
    """The SDK's per-request log at WARNING unless `level` is DEBUG."""
    logging.getLogger(_SDK_REQUEST_LOGGER).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)


def _configure_logging(current: Settings) -> None:
    logging.getLogger().setLevel(current.log_level)
    quiet_sdk_request_logs(current.log_level)
    install_redaction()  # idempotent; handlers added by the host since import get the filter too
    from shared.telemetry import configure as configure_telemetry

    configure_telemetry(current.applicationinsights_connection_string,
                        authentication=current.applicationinsights_authentication_string)
