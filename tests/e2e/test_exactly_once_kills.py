"""The worker killed (SIGKILL, in a real child process) at each point between claim and record: the redelivery
and the timer finish every failure with one action, one record in state done, the cluster back to its spec
(a plaintext secret in spark_conf included, byte for byte) and at most one email per notification."""

from __future__ import annotations

import copy
import multiprocessing
from datetime import timedelta

import pytest

from localdev.databricks_sim.model import TaskFailure, succeed_if_resized
from localdev.fakes.acs_email import FakeAcsEmail
from tests.e2e.kill_child import POINTS, acs_transport, work
from tests.fixtures.databricks import SIM_TOKEN

SECRET = "kill+Test/PlainKey=="
CLUSTER = {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_DS3_v2", "num_workers": 2,
           "spark_conf": {"fs.azure.account.key.acct.dfs.core.windows.net": SECRET}}
TIMEOUT = "java.net.SocketTimeoutException: Read timed out"
OOM = "java.lang.OutOfMemoryError: Java heap space"
# Which failure each point is tried on; the resize points get an out-of-memory failure.
CASES = [(p, "oom" if p == "between_update_and_repair" else "transient") for p in POINTS] + [
    ("after_repair_reached", "oom"), ("after_record", "oom")]


def _warm_up() -> None:
    """What a worker loads on its first message, loaded once here so that each forked child starts warm."""
    import azure.communication.email  # noqa: F401
    import azure.data.tables  # noqa: F401
    import azure.storage.queue  # noqa: F401

    from shared.classify import classify
    from shared.classify.model import FailureSignals

    classify(FailureSignals(text=TIMEOUT))


@pytest.fixture
def acs():
    with FakeAcsEmail() as fake:
        yield fake


def test_a_worker_killed_at_any_point_leaves_one_action_one_done_record_and_at_most_one_email(
        sim, azurite, unique_name, acs, monkeypatch):
    from shared import runtime
    from shared.decision import utcnow
    from shared.poller import poll
    from shared.worker import handle_message

    updates: list[tuple[int, str]] = []
    real_update = sim.workspace.update_job

    def counting_update(job_id, new_settings, fields_to_remove=()):
        real_update(job_id, new_settings, fields_to_remove)
        updates.append((int(job_id), new_settings["job_clusters"][0]["new_cluster"]["node_type_id"]))

    monkeypatch.setattr(sim.workspace, "update_job", counting_update)
    env = {
        "AzureWebJobsStorage": azurite.connection_string, "DATABRICKS_WORKSPACE_URL": sim.url,
        "DATABRICKS_PAT_TOKEN": SIM_TOKEN, "DATABRICKS_WORKSPACE_ID": sim.workspace_id,
        "DECISIONS_TABLE": f"{unique_name}d", "STATE_TABLE": f"{unique_name}s", "OUTBOX_TABLE": f"{unique_name}o",
        "EMAIL_ENABLED": "true", "EMAIL_TRANSPORT": "table", "EMAIL_SENDER": "agent@contoso.example",
        "EMAIL_DEFAULT_RECIPIENTS": "oncall@contoso.example", "EMAIL_REPEAT_WINDOW_MINUTES": "0",
        "LOG_LEVEL": "WARNING",
        # Every job here fails alike: as an incident their emails would be folded. Each is about one failure.
        "INCIDENTS_ENABLED": "false",
    }
    failures = []
    for point, kind in CASES:
        job = sim.add_job(f"kill_{point}_{kind}", [{"task_key": "main", "notebook_task": {"notebook_path": "/x"},
                                                    "job_cluster_key": "etl"}],
                          job_clusters=[{"job_cluster_key": "etl", "new_cluster": copy.deepcopy(CLUSTER)}])
        failure = TaskFailure(error=OOM if kind == "oom" else TIMEOUT)
        run = sim.fail_run(job, {"main": failure})
        if kind == "oom":
            sim.script_repair(run, succeed_if_resized(failure))
        body = f'{{"workspace_id": "{sim.workspace_id}", "job_id": {job}, "run_id": {run}}}'
        failures.append((point, kind, job, run, body))

    # Forked: the child starts with the modules imported (a spawned one spends seconds importing the SDKs);
    # it builds its own clients and tables from the environment, as a fresh worker would.
    _warm_up()
    fork = multiprocessing.get_context("fork")
    children = [fork.Process(target=work, args=(point, env, body, acs.endpoint, acs.access_key))
                for point, _, _, _, body in failures]
    for child in children:
        child.start()
    for child in children:
        child.join(120)
    assert [c.exitcode for c in children] == [-9] * len(children), "each worker died at its point"

    # The host redelivers each message once its visibility timeout is over; the claims of the dead workers
    # have outlived their lease by then. Then the timer follows the reruns and retries pending emails.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    deps = runtime.deps()
    deps.notifier.transport = acs_transport(acs.endpoint, acs.access_key)
    later = utcnow() + deps.store.lease + timedelta(minutes=1)
    deps.clock = lambda: later
    deps.notifier.clock = lambda: later
    for _, _, _, _, body in failures:
        handle_message(body, message_id="msg-1", dequeue_count=2, max_dequeue_count=5, deps=deps)
    # The redelivery alone finishes each record, even where the run already shows the agent's rerun succeeded.
    after_redelivery = deps.store.recent(utcnow() - timedelta(days=1))
    assert {r.status for r in after_redelivery} == {"done"}, [(r.key, r.status) for r in after_redelivery]
    sim.finish_runs()
    poll(deps, now=later)
    deps.notifier.flush(later + timedelta(minutes=10))

    records = deps.store.recent(utcnow() - timedelta(days=1))
    for point, kind, job, run, _ in failures:
        mine = [r for r in records if r.run_id == run]
        assert [r.status for r in mine] == ["done"], (point, kind, [(r.key, r.status) for r in mine])
        repairs = [i for i in sim.run(run)["repair_history"] if i["type"] == "REPAIR"]
        assert len(repairs) == 1, (point, kind, "repairs", len(repairs))
        assert mine[0].repair_id == repairs[0]["id"], (point, kind)
        job_updates = [node for j, node in updates if j == job]
        cluster = sim.job(job)["settings"]["job_clusters"][0]["new_cluster"]
        assert cluster == CLUSTER, (point, kind, cluster)  # the secret too, byte for byte
        if kind == "oom":
            assert job_updates == ["Standard_DS4_v2", "Standard_DS3_v2"], (point, job_updates)
            assert mine[0].outcome == "succeeded" and mine[0].resize.reverted
        else:
            assert job_updates == []
    posts = [r for r in acs.requests if r[0] == "POST"]
    operations = [s.operation_id for s in acs.sent]
    assert len(posts) == len(operations) == len(set(operations))  # no email was posted twice
    notified = {n for r in records for n in r.notifications}
    assert len(operations) <= len(notified)
