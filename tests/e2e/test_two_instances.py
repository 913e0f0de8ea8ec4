"""Two instances (two local runners, each its own process and so its own limiter) on one queue against one
simulated workspace: together they stay under every endpoint's budget, measured at the simulator."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from localdev.databricks_sim.model import TaskFailure
from shared.databricks.limiter import class_of
from shared.events import FailureEvent
from shared.queues import JOB_FAILURES
from tests.fixtures.databricks import SIM_TOKEN

ROOT = Path(__file__).resolve().parents[2]
FAILURES = 40
TIMEOUT = "java.net.SocketTimeoutException: Read timed out"
# Low budgets, so the limit binds at this size: per endpoint and workspace, all instances together.
BUDGETS = {"jobs": 8, "runs": 16, "job_writes": 4}


def _runner(env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", "localdev.host", "--port", "0", "--no-check-settings",
                                 "--settings", str(log.with_suffix(".absent.json"))],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def test_two_instances_on_one_queue_stay_under_one_workspace_budget(sim, azurite, unique_name, tmp_path):
    from azure.data.tables import TableClient
    from azure.storage.queue import QueueClient, TextBase64EncodePolicy

    runs = []
    for i in range(FAILURES):
        job = sim.add_job(f"two_{i}", [{"task_key": "main", "notebook_task": {"notebook_path": "/x"}}])
        runs.append((job, sim.fail_run(job, {"main": TaskFailure(error=TIMEOUT)})))
    queue = QueueClient.from_connection_string(azurite.connection_string, JOB_FAILURES,
                                               message_encode_policy=TextBase64EncodePolicy())
    try:
        queue.create_queue()
    except Exception:  # noqa: BLE001 - exists
        pass
    for job, run in runs:
        queue.send_message(FailureEvent(workspace_id=sim.workspace_id, job_id=job, run_id=run).to_message())
    sim.set_latency(0.05)
    sim.faults.reset_counts()

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS", "AZURE_OPENAI"))}
    env.update({
        "AzureWebJobsStorage": azurite.connection_string, "DATABRICKS_WORKSPACE_URL": sim.url,
        "DATABRICKS_PAT_TOKEN": SIM_TOKEN, "DATABRICKS_WORKSPACE_ID": sim.workspace_id,
        "DECISIONS_TABLE": f"{unique_name}d", "STATE_TABLE": f"{unique_name}s", "OUTBOX_TABLE": f"{unique_name}o",
        "EMAIL_ENABLED": "false", "AGENT_MODE": "act", "POLL_SCHEDULE": "0 0 0 1 1 *", "LOG_LEVEL": "INFO",
        "FUNCTIONS_MAX_INSTANCES": "2", "DATABRICKS_REQUEST_BURST": "1",
        "DATABRICKS_REQUESTS_PER_SECOND": str(BUDGETS["jobs"]),
        "DATABRICKS_RUNS_REQUESTS_PER_SECOND": str(BUDGETS["runs"]),
        "DATABRICKS_JOB_WRITES_PER_SECOND": str(BUDGETS["job_writes"]),
    })
    logs = [tmp_path / f"instance{i}.log" for i in (1, 2)]
    runners = [_runner(env, log) for log in logs]
    try:
        decisions = TableClient.from_connection_string(azurite.connection_string, f"{unique_name}d")
        done: list = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                done = [e for e in decisions.query_entities("status eq 'done'")]
            except Exception:  # noqa: BLE001 - the table is created by the first invocation
                continue
            if len(done) >= FAILURES:
                break
    finally:
        for runner in runners:
            runner.terminate()
        for runner in runners:
            runner.wait(15)

    assert len(done) == FAILURES
    assert {int(e["run_id"]) for e in done} == {run for _, run in runs}
    served = [log.read_text().count("function process_failure succeeded") for log in logs]
    assert all(n > 0 for n in served) and sum(served) >= FAILURES, served  # both instances did work
    peaks = sim.faults.peak_rates()
    assert peaks, "the simulator counted the requests"
    for key, peak in peaks.items():
        endpoint = key.split(" ", 1)[1]
        assert peak <= BUDGETS[class_of(endpoint)], (key, peak, peaks)
    # The budget is what bound them: jobs/get came close to it (more than one instance's share).
    assert peaks["GET jobs/get"] > BUDGETS["jobs"] / 2, peaks
