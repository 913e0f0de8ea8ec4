"""The Azure Functions (Python v2 model): each parses its trigger and hands over to shared.runtime.

Kept thin on purpose: no logic here. Importing this module must stay cheap (cold start): shared.runtime
imports the storage, identity, Key Vault, ACS and openai SDKs only when a queue message or timer needs them.
"""

import json

import azure.functions as func

from shared import runtime
from shared.learning import web as feedback
from shared.queues import JOB_FAILURES as QUEUE
from shared.queues import JOB_FAILURES_LLM as LLM_QUEUE
from shared.queues import JOB_FAILURES_LLM_POISON as LLM_POISON_QUEUE
from shared.queues import JOB_FAILURES_POISON as POISON_QUEUE

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
runtime.check_at_start()  # every settings problem in the log when the worker loads the app, not at the first call

STORAGE = "AzureWebJobsStorage"


@app.route(route="databricks/webhook", methods=["POST"])
@app.queue_output(arg_name="out", queue_name=QUEUE, connection=STORAGE)
def databricks_webhook(req: func.HttpRequest, out: func.Out[str]) -> func.HttpResponse:
    """Databricks job notification (generic webhook destination) → 202 and a queue message."""
    answer = runtime.webhook(req.get_body(), dict(req.headers))
    if answer.event is not None:
        out.set(answer.event.to_message())
    return func.HttpResponse(
        json.dumps({"status": answer.status, "message": answer.message}),
        status_code=answer.status,
        mimetype="application/json",
        headers=dict(answer.headers or {}),
    )


@app.queue_trigger(arg_name="msg", queue_name=QUEUE, connection=STORAGE)
@app.queue_output(arg_name="poison", queue_name=POISON_QUEUE, connection=STORAGE)
def process_failure(msg: func.QueueMessage, poison: func.Out[str]) -> None:
    """One failed run: decide, act, notify, record. Raises to have the message retried."""
    body = msg.get_body().decode("utf-8", errors="replace")
    handled = runtime.handle(body, message_id=msg.id or "", dequeue_count=msg.dequeue_count or 1)
    if handled.poison is not None:
        poison.set(body)


@app.queue_trigger(arg_name="msg", queue_name=LLM_QUEUE, connection=STORAGE)
@app.queue_output(arg_name="poison", queue_name=LLM_POISON_QUEUE, connection=STORAGE)
def refine_unsure_failure(msg: func.QueueMessage, poison: func.Out[str]) -> None:
    """A failure the rules were unsure about, handed over with its claim: the model, the decision, the action."""
    body = msg.get_body().decode("utf-8", errors="replace")
    handled = runtime.handle_unsure(body, message_id=msg.id or "", dequeue_count=msg.dequeue_count or 1)
    if handled.poison is not None:
        poison.set(body)


@app.timer_trigger(arg_name="timer", schedule="%POLL_SCHEDULE%", run_on_startup=False, use_monitor=True)
def poll_failures(timer: func.TimerRequest) -> None:
    """Catch failures no webhook reported; follow the reruns the agent started."""
    runtime.poll()


@app.route(route="decisions/{id}/feedback", methods=["POST"])
def decision_feedback(req: func.HttpRequest) -> func.HttpResponse:
    """A person's verdict on a decision (JSON), authenticated by the function key."""
    return _reply(feedback.api(req.route_params.get("id", ""), req.get_body(), dict(req.headers)))


@app.route(route="feedback/{id?}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def feedback_link(req: func.HttpRequest) -> func.HttpResponse:
    """The emails' signed, expiring feedback link: GET a small form, POST its answer (the signature authenticates)."""
    return _reply(feedback.link(req.method, req.route_params.get("id") or "", dict(req.params), req.get_body(),
                                dict(req.headers)))


@app.route(route="report", methods=["GET"])
def report(req: func.HttpRequest) -> func.HttpResponse:
    """The accuracy report page (function key): decisions, accuracy, cost and advice over ?since=7d."""
    from shared.report.sources import PAGE_HEADERS

    status, body, mimetype = runtime.report(dict(req.params))
    return func.HttpResponse(body, status_code=status, mimetype=mimetype, headers=PAGE_HEADERS)


def _reply(answer: feedback.HttpAnswer) -> func.HttpResponse:
    return func.HttpResponse(answer.body, status_code=answer.status, mimetype=answer.mimetype,
                             headers=dict(answer.headers))
