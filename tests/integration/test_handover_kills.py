"""The hand-over to job-failures-llm with workers killed (SIGKILL, forked children) at each point of it: before
the hand-over message is sent, right after, during the model call, and right after the repair reached
Databricks. Redeliveries, the hand-over queue and the timer then finish every failure with exactly one repair
and one record in state done."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from datetime import timedelta
from typing import Any

import pytest

from localdev.databricks_sim.model import TaskFailure
from localdev.fakes.openai_server import FAKE_API_KEY
from shared.queues import JOB_FAILURES, JOB_FAILURES_LLM
from tests.fixtures.databricks import SIM_TOKEN
from tests.fixtures.openai import DEPLOYMENT

UNSURE = "Step finalize_{} ended with status 3 after 412 s; see the step's own report for details."
NETWORK = {"category": "network", "confidence": 0.95, "root_cause": "A network blip between the driver and storage.",
           "suggested_fix": "Rerun the job.", "severity": "low", "suggested_parameters": None}
FIRST_STAGE = ("after_token_saved", "after_handover_sent")
SECOND_STAGE = ("during_model_call", "after_repair_reached")


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _child(point: str, env: dict[str, str], body: str) -> None:
    """One delivery of `body` (a job-failures or a hand-over message) that dies at `point`."""
    os.environ.update(env)
    from shared import runtime
    from shared.handover import is_token

    runtime.reset()
    deps = runtime.deps()
    save, send, jobs_api = deps.store.save, deps.hand_over, deps.jobs_api

    def save_then_maybe_die(record: Any, **kw: Any) -> Any:
        out = save(record, **kw)
        if point == "after_token_saved" and out.status == "claimed" and is_token(out.claim_owner):
            die()
        return out

    def send_then_die(body: str, delay: int) -> None:
        send(body, delay)
        die()

    def api_for(workspace_id: Any) -> Any:
        api = jobs_api(workspace_id)
        repair = api.repair_run

        def repair_then_die(*a: Any, **k: Any) -> Any:
            repair(*a, **k)
            die()
        if point == "after_repair_reached":
            api.repair_run = repair_then_die
        return api

    deps.store.save = save_then_maybe_die
    deps.jobs_api = api_for
    if point == "after_handover_sent":
        deps.hand_over = send_then_die
    if point == "during_model_call":
        deps.analyzer.client.complete = lambda *a, **k: die()
    if point in FIRST_STAGE:
        runtime.handle(body, message_id="first", dequeue_count=1)
    else:
        runtime.handle_unsure(body, message_id="second", dequeue_count=1)
    os._exit(0)


def _receive_all(client: Any, visibility: int = 1) -> list[Any]:
    return list(client.receive_messages(max_messages=32, visibility_timeout=visibility))


def _drain(deps: Any, queues: dict[str, Any], seconds: float) -> None:
    """Deliver every message of both queues, as the host would, until both stay empty (bounded)."""
    from shared.worker import handle_handover_message, handle_message

    deadline, quiet_since = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        got = False
        for name, client in queues.items():
            for message in _receive_all(client):
                got = True
                handle = handle_message if name == JOB_FAILURES else handle_handover_message
                try:
                    handle(message.content, message_id=message.id, dequeue_count=message.dequeue_count,
                           max_dequeue_count=5, deps=deps)
                    client.delete_message(message)
                except Exception:  # noqa: BLE001 - left for its redelivery, as the host does
                    pass
        if got:
            quiet_since = None
        elif sum(c.get_queue_properties().approximate_message_count for c in queues.values()) == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 1.5:
                return
        time.sleep(0.2)


@pytest.fixture
def model(openai_fake):
    openai_fake.default_answer = dict(NETWORK)
    return openai_fake


def test_workers_killed_around_the_hand_over_leave_one_repair_and_one_done_record(
        sim, azurite, unique_name, model, monkeypatch):
    from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

    from shared import runtime
    from shared.classify import classify
    from shared.classify.model import FailureSignals
    from shared.decision import utcnow
    from shared.poller import poll

    env = {
        "AzureWebJobsStorage": azurite.connection_string, "DATABRICKS_WORKSPACE_URL": sim.url,
        "DATABRICKS_PAT_TOKEN": SIM_TOKEN, "DATABRICKS_WORKSPACE_ID": sim.workspace_id,
        "DECISIONS_TABLE": f"{unique_name}d", "STATE_TABLE": f"{unique_name}s", "OUTBOX_TABLE": f"{unique_name}o",
        "EMAIL_ENABLED": "false", "LOG_LEVEL": "WARNING", "CLAIM_WAIT_SECONDS": "1",
        "AZURE_OPENAI_ENDPOINT": model.endpoint, "AZURE_OPENAI_API_KEY": FAKE_API_KEY,
        "AZURE_OPENAI_DEPLOYMENT": DEPLOYMENT, "AZURE_OPENAI_MODEL": "gpt-4o-mini", "LLM_CACHE_TTL_HOURS": "0",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    policies = {"message_encode_policy": TextBase64EncodePolicy(), "message_decode_policy": TextBase64DecodePolicy()}
    queues = {name: QueueClient.from_connection_string(azurite.connection_string, name, **policies)
              for name in (JOB_FAILURES, JOB_FAILURES_LLM)}
    runtime.reset()
    deps = runtime.deps()  # creates both queues and the tables
    for client in queues.values():
        client.clear_messages()

    failures = []
    for i, point in enumerate(FIRST_STAGE + SECOND_STAGE):
        job = sim.add_job(f"handover_{point}", [{"task_key": "main", "notebook_task": {"notebook_path": "/x"}}])
        run = sim.fail_run(job, {"main": TaskFailure(error=UNSURE.format("klmnop"[i] * 3))})
        failures.append((point, run, f'{{"workspace_id": "{sim.workspace_id}", "job_id": {job}, "run_id": {run}}}'))

    # The second-stage points need their hand-over message first: a healthy first stage makes it.
    second_bodies = {}
    for point, run, body in failures:
        if point in SECOND_STAGE:
            assert runtime.handle(body, message_id="first", dequeue_count=1).result.status == "handed_over"
    for message in _receive_all(queues[JOB_FAILURES_LLM], visibility=1):
        run = int(message.content.split('"run_id":')[1].split(",")[0])
        second_bodies[run] = message.content
    assert len(second_bodies) == len(SECOND_STAGE)

    classify(FailureSignals(text="warm up"))  # forked children start with the rules loaded
    fork = multiprocessing.get_context("fork")
    children = [fork.Process(target=_child, args=(point, env, second_bodies.get(run, body)))
                for point, run, body in failures]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
    assert [c.exitcode for c in children] == [-9] * len(children), "each worker died at its point"
    time.sleep(1.2)  # the messages the dead children held become visible again

    # Redeliveries while the dead workers' leases still run: nothing is decided twice, nothing acts twice.
    for point, run, body in failures:
        if point in FIRST_STAGE:
            queues[JOB_FAILURES].send_message(body)  # the host redelivers the first-stage message
    _drain(deps, queues, 20)
    # Then the timer, once those leases are over, and whatever it queues again.
    later = utcnow() + deps.store.lease + timedelta(minutes=1)
    deps.clock = lambda: later
    poll(deps, now=later)
    _drain(deps, queues, 30)

    records = deps.store.recent(utcnow() - timedelta(days=1))
    for point, run, _ in failures:
        mine = [r for r in records if r.run_id == run]
        assert [r.status for r in mine] == ["done"], (point, [(r.key, r.status, r.claim_owner) for r in mine])
        repairs = [h for h in sim.run(run)["repair_history"] if h["type"] == "REPAIR"]
        assert len(repairs) == 1 and mine[0].repair_id == repairs[0]["id"], (point, repairs)
        assert mine[0].analysis.source == "llm" and mine[0].category == "network", point
    assert len(model.chat_requests) <= 2 * len(failures)
