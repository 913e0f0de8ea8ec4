"""Every credential shape of tests/secret_catalogue.py, planted in a real failure, searched for in every sink.

The whole app runs as in Azure: function_app in the local runner, real Azurite, the Databricks simulator, the
fake Azure OpenAI (asked about every failure, and answering by quoting the failure text back, as a model may),
emails written as .eml/.html files. Each shape fails one job; Databricks' webhook announces it; a malformed
queue message carrying the same text goes to the poison queue. Then every sink is searched for every secret:
the prompts the model received, the email files (raw and decoded), and every entity of every table (decisions,
state with the poison reasons, the LLM cache, the outbox), and every log line the app wrote.
"""

from __future__ import annotations

import base64
import email
import email.policy
import io
import json
import logging
import re
from pathlib import Path

import pytest
import requests

from localdev.azurite import start_azurite
from localdev.databricks_sim.model import TaskFailure
from localdev.fakes.openai_server import DEFAULT_ANSWER, FAKE_API_KEY, FakeAzureOpenAI
from localdev.host import LocalFunctionsHost, load_app, read_host_json
from tests.fixtures.databricks import SIM_TOKEN
from tests.secret_catalogue import SHAPES

ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "databricks", "sinks-webhook-password"
_FAILURE = re.compile(r"<failure[^>]*>(.*?)</failure", re.S)


def _echo(seen) -> dict:
    """A model that repeats what it was shown: the failure text comes back as its root cause."""
    prompt = seen.prompt_text
    quoted = _FAILURE.search(prompt)
    return {**DEFAULT_ANSWER, "root_cause": (quoted.group(1) if quoted else prompt)[-1500:],
            "suggested_fix": prompt[:400]}


def _sinks(agent_dir: Path, connection_string: str, openai: FakeAzureOpenAI) -> dict[str, str]:
    """Every place the agent wrote to, as text, by name."""
    from azure.data.tables import TableServiceClient

    sinks = {"llm prompts": "\n".join(json.dumps(r.body) for r in openai.chat_requests)}
    files, decoded = [], []
    for path in sorted(agent_dir.rglob("*")):
        if path.is_file():
            raw = path.read_bytes()
            files.append(raw.decode("utf-8", "replace"))
            if path.suffix == ".eml":
                message = email.message_from_bytes(raw, policy=email.policy.default)
                decoded.append(str(message["subject"]))
                decoded.extend(part.get_content() for part in message.walk() if part.get_content_maintype() == "text")
    sinks["email files"] = "\n".join(files)
    sinks["email files decoded"] = "\n".join(decoded)
    service = TableServiceClient.from_connection_string(connection_string)
    for table in service.list_tables():
        rows = service.get_table_client(table.name).list_entities()
        sinks[f"table {table.name}"] = "\n".join(json.dumps(dict(row), default=str) for row in rows)
    return sinks


def _variants(secret: str) -> set[str]:
    # A secret also leaks JSON-escaped, quoted-printable or URL-encoded; base64 is checked in the decoded parts.
    return {secret, json.dumps(secret)[1:-1], secret.replace("=", "=3D")}


def count_leaks(sinks: dict[str, str]) -> list[tuple[str, str]]:
    """(shape, sink) for every secret found."""
    return [(shape.name, sink) for shape in SHAPES for sink, text in sinks.items()
            if any(v in text for secret in shape.secrets for v in _variants(secret))]


@pytest.fixture
def agent_run(sim, tmp_path, monkeypatch):
    """The app, run once over one failure per shape; yields (sinks, number of decisions)."""
    from azure.storage.queue import QueueClient, TextBase64EncodePolicy

    from shared import runtime

    azurite = start_azurite()
    openai = FakeAzureOpenAI(deployments=("gpt-4o-mini",), default_answer=_echo).start()
    # A log handler as the Functions host has one: on the root logger before the app starts (and filters it).
    log_stream = io.StringIO()
    log_handler = logging.StreamHandler(log_stream)
    log_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(log_handler)
    level = root.level
    root.setLevel(logging.DEBUG)
    emails = tmp_path / "emails"
    env = {
        "AzureWebJobsStorage": azurite.connection_string,
        "DATABRICKS_WORKSPACE_URL": sim.url, "DATABRICKS_PAT_TOKEN": SIM_TOKEN,
        "DATABRICKS_WORKSPACE_ID": sim.workspace_id, "POLL_SCHEDULE": "0 */5 * * * *",
        "WEBHOOK_USERNAME": USER, "WEBHOOK_PASSWORD": PASSWORD,
        "AGENT_MODE": "observe",  # the decision is what matters here, not the repair
        "EMAIL_ENABLED": "true", "EMAIL_TRANSPORT": "file", "EMAIL_FILE_DIR": str(emails),
        "EMAIL_SENDER": "agent@contoso.example", "EMAIL_DEFAULT_RECIPIENTS": "oncall@contoso.example",
        "EMAIL_MAX_PER_RECIPIENT_PER_HOUR": "0", "EMAIL_REPEAT_WINDOW_MINUTES": "0",
        "AZURE_OPENAI_ENDPOINT": openai.endpoint, "AZURE_OPENAI_API_KEY": FAKE_API_KEY,
        "AZURE_OPENAI_DEPLOYMENT": "gpt-4o-mini", "AZURE_OPENAI_MODEL": "gpt-4o-mini-2024-07-18",
        "LLM_CONFIDENCE_THRESHOLD": "1", "LLM_ASK_FOR_EMAILS": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    host_json = read_host_json(ROOT)
    host_json["extensions"]["queues"].update({"visibilityTimeout": "00:00:00", "maxPollingInterval": "00:00:00.100",
                                            "batchSize": 16, "newBatchThreshold": 8})
    host = LocalFunctionsHost(load_app(ROOT), azurite.connection_string, host_json=host_json, env=env)
    host.start()
    try:
        url = f"{host.base_url}/api/databricks/webhook?code={host.host_key}"
        queue = QueueClient.from_connection_string(azurite.connection_string, "job-failures",
                                                   message_encode_policy=TextBase64EncodePolicy())
        for i, shape in enumerate(SHAPES):
            # The text is also the job's name (job settings: anyone who can edit the job wrote it) and the name
            # the webhook body carries (a forged body can say anything).
            job = sim.add_job(f"job_{i} {shape.text}", [{"task_key": "main", "notebook_task": {"notebook_path": "/x"}}])
            run = sim.fail_run(job, {"main": TaskFailure(error=shape.text, error_trace=f"Traceback:\n{shape.text}")})
            payload = {"event_type": "jobs.on_failure", "workspace_id": sim.workspace_id,
                       "run": {"run_id": run}, "job": {"job_id": job, "name": shape.text}}
            answer = requests.post(url, json=payload, auth=(USER, PASSWORD), timeout=10)
            assert answer.status_code == 202, answer.text
            # A message that can never be processed: its body and reason end in the state table.
            queue.send_message(json.dumps({"version": 1, "run_id": "not-a-number", "job_name": shape.text}))
        host.wait_idle(timeout=120)
        decisions = sum(1 for _ in _table_rows(azurite.connection_string, "agentdecisions"))
        sinks = _sinks(emails, azurite.connection_string, openai)
        sinks["logs"] = log_stream.getvalue()
        yield sinks, decisions
    finally:
        root.removeHandler(log_handler)
        root.setLevel(level)
        host.stop()
        openai.stop()
        azurite.stop()
        runtime.reset()


def _table_rows(connection_string: str, name: str):
    from azure.data.tables import TableServiceClient

    return TableServiceClient.from_connection_string(connection_string).get_table_client(name).list_entities()


def test_no_secret_shape_reaches_any_sink(agent_run):
    sinks, decisions = agent_run
    assert decisions == len(SHAPES), "every planted failure got its decision"
    # The sinks were really written to: each shape's failure reached the model, an email and the poison reasons.
    assert sinks["llm prompts"].count('"messages"') >= len(SHAPES)
    assert sinks["email files decoded"].count("Subject") >= 0 and sinks["email files"]
    assert sinks["table agentstate"].count("not-a-number") >= len(SHAPES)
    assert "failure event queued" in sinks["logs"]
    leaks = count_leaks(sinks)
    print(f"\nsecret sinks: {len(SHAPES)} shapes x {len(sinks)} sinks: {len(leaks)} leaks, "
          f"{len({shape for shape, _ in leaks})} shapes leaked somewhere")
    assert leaks == [], "\n".join(f"{shape}: in {sink}" for shape, sink in leaks)
