"""Storage: the job-failures queue, the LLM queue, their poison queues, and the agent's tables, reached as the app
would."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shared.doctor.context import NOT_READY, READY, CheckResult, DoctorContext, azure_credential, first_line, host

from shared.queues import JOB_FAILURES, JOB_FAILURES_LLM, JOB_FAILURES_LLM_POISON, JOB_FAILURES_POISON

QUEUE_ROLE, TABLE_ROLE = "Storage Queue Data Contributor", "Storage Table Data Contributor"


def check_storage(ctx: DoctorContext) -> Iterable[CheckResult]:
    s = ctx.settings
    problems = s.problems_for("storage")
    if problems:
        yield CheckResult("storage", NOT_READY, "; ".join(map(str, problems)),
                          "locally: AzureWebJobsStorage=UseDevelopmentStorage=true and start Azurite")
        return
    yield from _check_queue(ctx, JOB_FAILURES, JOB_FAILURES_POISON)
    if s.llm_queue_enabled:  # unsure failures wait here for the model (shared/handover.py)
        yield from _check_queue(ctx, JOB_FAILURES_LLM, JOB_FAILURES_LLM_POISON)
    yield from _check_tables(ctx)


def _storage_kwargs(ctx: DoctorContext) -> dict[str, Any]:
    # Fail fast: the SDKs' default retries would keep the doctor waiting for minutes on a wrong address.
    return {"retry_total": 0, "connection_timeout": ctx.timeout, "read_timeout": ctx.timeout, **ctx.storage_kwargs}


def _check_queue(ctx: DoctorContext, queue_name: str, poison_name: str) -> Iterable[CheckResult]:
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.queue import QueueClient

    s = ctx.settings
    name = f"storage queue {queue_name}"
    try:
        if s.storage_connection_string:
            connection = s.storage_connection_string.get_secret_value()
            queue = QueueClient.from_connection_string(connection, queue_name, **_storage_kwargs(ctx))
            poison = QueueClient.from_connection_string(connection, poison_name, **_storage_kwargs(ctx))
        else:
            credential = azure_credential(s)
            queue = QueueClient(s.storage_queue_service_uri, queue_name, credential=credential, **_storage_kwargs(ctx))
            poison = QueueClient(s.storage_queue_service_uri, poison_name, credential=credential,
                                 **_storage_kwargs(ctx))
        with queue, poison:
            try:
                count = queue.get_queue_properties().approximate_message_count
                detail = f"reachable at {host(queue.url)}; {count} message(s) waiting"
            except ResourceNotFoundError:
                detail = f"reachable at {host(queue.url)}; the queue is created on the first webhook"
            try:
                poisoned = poison.get_queue_properties().approximate_message_count
            except ResourceNotFoundError:
                poisoned = 0
    except Exception as exc:  # noqa: BLE001 - any failure is the check's answer
        yield CheckResult(name, NOT_READY, _storage_error(exc), _storage_fix(exc, QUEUE_ROLE))
        return
    yield CheckResult(name, READY, detail)
    if poisoned:
        yield CheckResult(
            f"storage queue {poison_name}", NOT_READY,
            f"{poisoned} message(s) the agent gave up on", "python -m shared poison list shows why; python -m shared poison requeue puts them back",
            required=False,
        )


def _check_tables(ctx: DoctorContext) -> Iterable[CheckResult]:
    from azure.core.exceptions import ResourceNotFoundError
    from azure.data.tables import TableServiceClient

    s = ctx.settings
    try:
        if s.storage_connection_string:
            service = TableServiceClient.from_connection_string(
                s.storage_connection_string.get_secret_value(), **_storage_kwargs(ctx)
            )
        else:
            service = TableServiceClient(
                endpoint=s.storage_table_service_uri, credential=azure_credential(s), **_storage_kwargs(ctx)
            )
    except Exception as exc:  # noqa: BLE001
        yield CheckResult("storage tables", NOT_READY, _storage_error(exc), _storage_fix(exc, TABLE_ROLE))
        return
    with service:
        for table in (s.decisions_table, s.state_table, s.outbox_table):
            name = f"storage table {table}"
            try:
                client = service.get_table_client(table)
                next(iter(client.query_entities("PartitionKey eq 'doctor'", results_per_page=1).by_page()), None)
                yield CheckResult(name, READY, f"reachable at {host(service.url)}")
            except ResourceNotFoundError:
                yield CheckResult(name, READY, f"reachable at {host(service.url)}; the table is created on first use")
            except Exception as exc:  # noqa: BLE001
                yield CheckResult(name, NOT_READY, _storage_error(exc), _storage_fix(exc, TABLE_ROLE))


def _storage_error(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    if status in (401, 403):
        return f"access denied (HTTP {status})"
    if type(exc).__name__ in ("ServiceRequestError", "ServiceResponseError"):
        return f"cannot connect: {first_line(exc)}"
    return f"{type(exc).__name__}: {first_line(exc)}"


def _storage_fix(exc: Exception, role: str) -> str:
    if getattr(exc, "status_code", None) in (401, 403):
        return f"give the app's identity the {role} role on the storage account (or fix the connection string's key)"
    return ("check AzureWebJobsStorage or the service URIs (locally: start Azurite, e.g. "
            "`npx azurite --inMemoryPersistence`, for UseDevelopmentStorage=true)")
