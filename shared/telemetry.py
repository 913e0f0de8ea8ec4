"""Telemetry: log lines with their dimensions and the agent's own metrics, sent to Application Insights.

The Python worker forwards only a log record's message text to Application Insights, so `extra={"run_id": …}`
is lost on the way. With a connection string set, `configure()` installs the Azure Monitor OpenTelemetry
distro: its logging handler turns every non-standard record attribute into a custom dimension, and the
meters below become real metrics. Without one, nothing is imported and the meters are the API's no-ops.
The distro is imported on first use only (it costs about a second), so a cold start does not pay for it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shared.redaction import install_redaction

if TYPE_CHECKING:
    from shared.decision import DecisionRecord

log = logging.getLogger(__name__)

METER_NAME = "databricks_ai_agent"
# The dimensions a log line of the agent may carry in `extra`; they reach Application Insights as
# customDimensions and the workbook filters on them.
DIMENSIONS = ("workspace_id", "job_id", "run_id", "decision_key", "category", "action", "rule_id", "source")

_lock = threading.Lock()
_configured = False
_instruments: dict[str, Any] = {}

# Which instruments exist: name → (kind, unit, description). Data, so the workbook and the docs read one list.
INSTRUMENTS: dict[str, tuple[str, str, str]] = {
    "agent.decisions": ("counter", "1", "Decisions made, by action, category and decision source."),
    "agent.reruns": ("counter", "1", "Reruns the agent started (repair, run-now, resized rerun)."),
    "agent.rerun_outcomes": ("counter", "1", "Reruns followed up, by result (succeeded, failed)."),
    "agent.emails": ("counter", "1", "Notifications handed to a transport, by result (sent, failed)."),
    "agent.llm.calls": ("counter", "1", "Azure OpenAI consultations, by source (llm, llm_cache)."),
    "agent.llm.tokens": ("counter", "1", "Prompt and completion tokens, by kind."),
    "agent.llm.cost_usd": ("counter", "USD", "Estimated LLM cost."),
    "agent.time_to_action": ("histogram", "s", "From the webhook (or poller hit) to the decision being acted on."),
    "agent.poison": ("counter", "1", "Messages that ended in the poison queue, by reason kind."),
}


def configure(connection_string: str | None, *, authentication: str | None = None,
              log_record_processors: Sequence[Any] = (), metric_readers: Sequence[Any] = ()) -> bool:
    """Install the Azure Monitor distro once, when a connection string is set. True when telemetry is on.

    `authentication` is APPLICATIONINSIGHTS_AUTHENTICATION_STRING ("Authorization=AAD;ClientId=<id>"): the
    deployed app sends with its managed identity because local auth is off on the Application Insights
    resource. Extra processors and readers let a test read what would be exported.
    """
    global _configured
    if not connection_string:
        return False
    with _lock:
        if _configured:
            return True
        from azure.monitor.opentelemetry import configure_azure_monitor

        options: dict[str, Any] = {
            "connection_string": connection_string,
            # Only the agent's own logs: the SDKs' HTTP chatter would drown them and cost money.
            "logger_name": "shared",
            "instrumentation_options": {name: {"enabled": False} for name in
                                        ("django", "fastapi", "flask", "psycopg2", "urllib", "urllib3")},
            "enable_live_metrics": False,
        }
        credential = _credential(authentication)
        if credential is not None:
            options["credential"] = credential
        if log_record_processors:
            options["log_record_processors"] = list(log_record_processors)
        if metric_readers:
            options["metric_readers"] = list(metric_readers)
        configure_azure_monitor(**options)
        _instruments.clear()  # made again against the real meter provider
        _configured = True
    # The distro added a handler to the "shared" logger: it must not export a secret a line quotes.
    install_redaction(logging.getLogger("shared"))
    log.info("telemetry: sending logs and metrics to Application Insights")
    return True


def _credential(authentication: str | None) -> Any:
    if not authentication:
        return None
    parts = dict(p.split("=", 1) for p in authentication.split(";") if "=" in p)
    if parts.get("Authorization", "").upper() != "AAD":
        return None
    from azure.identity import ManagedIdentityCredential

    client_id = parts.get("ClientId")
    return ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()


def _instrument(name: str) -> Any:
    found = _instruments.get(name)
    if found is None:
        from opentelemetry import metrics

        kind, unit, description = INSTRUMENTS[name]
        meter = metrics.get_meter(METER_NAME)
        make = meter.create_histogram if kind == "histogram" else meter.create_counter
        found = _instruments[name] = make(name, unit=unit, description=description)
    return found


def _add(name: str, value: float, attributes: dict[str, Any]) -> None:
    if not _configured:
        return  # nothing listens: skip the import and the no-op calls
    try:
        instrument = _instrument(name)
        if INSTRUMENTS[name][0] == "histogram":
            instrument.record(value, attributes)
        else:
            instrument.add(value, attributes)
    except Exception:  # noqa: BLE001 - a metric must never fail a decision
        log.debug("telemetry: could not record %s", name, exc_info=True)


def record_decision(record: DecisionRecord) -> None:
    """Metrics of one finished decision: its action and category, rerun, LLM use, time to action."""
    action = record.action.value if record.action is not None else "none"
    source = record.analysis.source
    dims = {"action": action, "category": record.category.value, "source": source, "mode": record.mode}
    _add("agent.decisions", 1, dims)
    if record.is_retry and record.mode == "act" and (record.repair_id is not None or record.new_run_id is not None):
        _add("agent.reruns", 1, {"action": action, "category": record.category.value})
    if source in ("llm", "llm_cache"):
        _add("agent.llm.calls", 1, {"source": source})
        if source == "llm":
            _add("agent.llm.tokens", record.analysis.prompt_tokens, {"kind": "prompt"})
            _add("agent.llm.tokens", record.analysis.completion_tokens, {"kind": "completion"})
            _add("agent.llm.cost_usd", record.analysis.cost_usd, {})
    if record.decided_at is not None:
        seconds = (record.decided_at - record.received_at).total_seconds()
        _add("agent.time_to_action", max(seconds, 0.0), {"action": action})


def record_rerun_outcome(succeeded: bool, *, category: str | None = None) -> None:
    """A rerun the agent started ended: succeeded confirms the decision, failed refutes it."""
    _add("agent.rerun_outcomes", 1, {"result": "succeeded" if succeeded else "failed", "category": category or ""})


def record_emails(sent: int, failed: int = 0) -> None:
    """Notifications handed to the transport in one flush or send."""
    if sent:
        _add("agent.emails", sent, {"result": "sent"})
    if failed:
        _add("agent.emails", failed, {"result": "failed"})


def record_poison(reason_kind: str) -> None:
    """A message ended in the poison queue (the alert in infra fires on this)."""
    _add("agent.poison", 1, {"reason": reason_kind})


def dimensions(record: DecisionRecord) -> dict[str, Any]:
    """The `extra` for a log line about a decision: every dimension the workbook filters on."""
    values: dict[str, Any] = {
        "workspace_id": record.workspace_id, "job_id": record.job_id, "run_id": record.run_id,
        "decision_key": record.key, "category": record.category.value,
        "action": record.action.value if record.action is not None else None,
        "rule_id": record.rule_id, "source": record.analysis.source,
    }
    return {k: v for k, v in values.items() if v is not None}


def reset_for_tests() -> None:
    """Forget the configuration (tests install their own providers)."""
    global _configured
    with _lock:
        _configured = False
        _instruments.clear()
