"""Build the pipeline's dependencies from the settings: once per worker, in one place.

Heavy SDKs (storage, identity, Key Vault, ACS, openai) are imported here, inside functions, so importing
function_app stays cheap (cold start): the webhook path never loads them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.events import FailureEvent
from shared.exceptions import ConfigError
from shared.pipeline import PipelineDeps
from shared.queues import JOB_FAILURES, JOB_FAILURES_LLM
from shared.settings import Settings




def storage_credential(settings: Settings) -> Any:
    """The identity used for storage when no connection string is set (managed identity in Azure)."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if settings.azure_client_id:
        return ManagedIdentityCredential(client_id=settings.azure_client_id)
    return DefaultAzureCredential()


def table_service(settings: Settings) -> Any:
    """A TableServiceClient from AzureWebJobsStorage (connection string, or service URI + identity)."""
    from azure.data.tables import TableServiceClient

    from shared.http_session import sdk_transport

    # The table clients of this service share its transport: proxies read once, not on every call.
    if settings.storage_connection_string:
        return TableServiceClient.from_connection_string(_connection_string(settings), transport=sdk_transport())
    if not settings.storage_table_service_uri:
        raise ConfigError("AzureWebJobsStorage or AzureWebJobsStorage__tableServiceUri must be set")
    return TableServiceClient(endpoint=settings.storage_table_service_uri, credential=storage_credential(settings),
                              transport=sdk_transport())


def queue_client(settings: Settings, name: str = JOB_FAILURES) -> Any:
    """A QueueClient that writes base64 messages, as the Functions queue trigger expects by default."""
    from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

    from shared.http_session import sdk_transport

    policies = {"message_encode_policy": TextBase64EncodePolicy(), "message_decode_policy": TextBase64DecodePolicy(),
                "transport": sdk_transport()}
    if settings.storage_connection_string:
        return QueueClient.from_connection_string(_connection_string(settings), name, **policies)
    if not settings.storage_queue_service_uri:
        raise ConfigError("AzureWebJobsStorage or AzureWebJobsStorage__queueServiceUri must be set")
    return QueueClient(settings.storage_queue_service_uri, name, credential=storage_credential(settings), **policies)


def table(settings: Settings, name: str, service: Any = None) -> Any:
    """A TableClient for `name` (on `service`, or a new TableServiceClient), created on first use."""
    service = service or table_service(settings)
    service.create_table_if_not_exists(name)
    return service.get_table_client(name)


def _connection_string(settings: Settings) -> str:
    assert settings.storage_connection_string is not None
    # "UseDevelopmentStorage=true" is understood by both storage SDKs (Azurite's default ports).
    return settings.storage_connection_string.get_secret_value()


def request_limiters(settings: Settings) -> Any:
    """The process's per-workspace Jobs API limiters (the poller's and the pipeline's clients share them)."""
    from shared.databricks.limiter import RequestLimit, process_limiters

    return process_limiters(RequestLimit(settings.databricks_requests_per_second, settings.databricks_request_burst,
                                         settings.functions_max_instances,
                                         (("runs", settings.databricks_runs_requests_per_second),
                                          ("job_writes", settings.databricks_job_writes_per_second))))


def build_deps(settings: Settings) -> PipelineDeps:
    """Every dependency of the pipeline and the poller, for this settings object."""
    from shared.classify import classify
    from shared.databricks.client import build_jobs_api
    from shared.notify import build_notifier
    from shared.secrets import build_secret_provider
    from shared.store import TableDecisionStore
    from shared.state import TableStateStore
    from shared.workspaces import resolve_workspace, workspace_client_secret, workspace_key, workspace_pat

    secrets = build_secret_provider(settings)
    clients: dict[str, Any] = {}

    def jobs_api(workspace_id: str | None):
        workspace = resolve_workspace(settings, workspace_id)
        key = workspace_key(workspace)
        if key not in clients:
            clients[key] = build_jobs_api(
                workspace, timeout=settings.databricks_http_timeout_seconds,
                pat_token=workspace_pat(workspace, secrets), azure_client_id=settings.azure_client_id,
                client_secret=workspace_client_secret(workspace, secrets),
                limit=request_limiters(settings).for_workspace(key),
            )
        return clients[key]

    def key_of(workspace_id: str | None) -> str:
        return workspace_key(resolve_workspace(settings, workspace_id))

    queue = queue_client(settings)
    try:
        queue.create_queue()
    except Exception:  # noqa: BLE001 - exists already (the usual case) or no right to create: sending will tell
        pass

    def enqueue(event: FailureEvent, delay_seconds: int) -> None:
        from shared.tables import storage_errors

        with storage_errors("enqueue a failure"):
            queue.send_message(event.to_message(), visibility_timeout=delay_seconds or None)

    def oldest_waiting() -> datetime | None:
        from shared.tables import storage_errors

        with storage_errors("peek the failure queue"):
            front = list(queue.peek_messages(max_messages=1))
        return front[0].inserted_on if front else None

    tables = table_service(settings)
    from shared.learning.links import with_link_key

    learning = build_learning(settings, tables, secrets)
    analyzer = build_analyzer(settings, secrets, tables)
    return PipelineDeps(
        settings=settings,
        jobs_api=jobs_api,
        workspace_key=key_of,
        store=TableDecisionStore(table(settings, settings.decisions_table, tables),
                                 lease=timedelta(seconds=settings.claim_lease_seconds)),
        state=TableStateStore(table(settings, settings.state_table, tables)),
        incidents=build_incidents(settings, tables),
        notifier=build_notifier(with_link_key(settings, secrets), table_service_client=tables, secrets=secrets),
        classify=learning.classifier(classify),  # a learned rule for the fingerprint decides over the shipped ones
        enqueue=enqueue,
        analyzer=analyzer,
        oldest_waiting=oldest_waiting,
        learning=learning,
        hand_over=llm_queue_sender(settings) if analyzer is not None and settings.llm_queue_enabled else None,
    )


def llm_queue_sender(settings: Settings) -> Any:
    """Puts a hand-over message (shared/handover.py) on job-failures-llm, visible after N seconds."""
    queue = queue_client(settings, JOB_FAILURES_LLM)
    try:
        queue.create_queue()
    except Exception:  # noqa: BLE001 - exists already, or no right to create: sending will tell
        pass

    def send(body: str, delay_seconds: int) -> None:
        from shared.tables import storage_errors

        with storage_errors("hand a failure to the LLM queue"):
            queue.send_message(body, visibility_timeout=delay_seconds or None)

    return send


def build_analyzer(settings: Settings, secrets: Any, tables: Any) -> Any:
    """The LLM analyzer when Azure OpenAI is configured, else None (rules only)."""
    if not (settings.azure_openai_endpoint and settings.azure_openai_deployment):
        return None
    from shared.llm import build_analyzer as build

    return build(settings, secrets=secrets, table_service_client=tables)


def build_learning(settings: Settings, tables: Any, secrets: Any) -> Any:
    """The learning loop over the storage account's feedback and learned-rule tables."""
    from shared.learning.feedback import TableFeedbackStore
    from shared.learning.learned_rules import TableLearnedRuleStore
    from shared.learning.links import signing_key_reader
    from shared.learning.loop import LearningLoop

    return LearningLoop(
        rules=TableLearnedRuleStore(table(settings, settings.learned_rules_table, tables)),
        feedback=TableFeedbackStore(table(settings, settings.feedback_table, tables)),
        signing_key=signing_key_reader(settings, secrets),
    )


def build_incidents(settings: Settings, tables: Any) -> Any:
    """The incidents table (shared/incidents), or None when INCIDENTS_ENABLED is false."""
    if not settings.incidents_enabled:
        return None
    from shared.incidents.store import TableIncidentStore

    return TableIncidentStore(table(settings, settings.incidents_table, tables))
