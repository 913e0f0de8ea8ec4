"""A failure's whole path through the Functions: webhook → queue → decision → action → Table Storage."""

from __future__ import annotations

from localdev.databricks_sim.model import TaskFailure, succeed_if_resized
from shared.taxonomy import Action

CLUSTER = {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_DS3_v2", "num_workers": 2}
READ_TIMEOUT = ("java.net.SocketTimeoutException: Read timed out\n"
                "\tat java.base/sun.nio.ch.NioSocketImpl.timedRead(NioSocketImpl.java:288)")
OOM = ("org.apache.spark.SparkException: Job aborted due to stage failure: Task 3 in stage 7.0 failed 4 times, "
       "most recent failure: Lost task 3.3 in stage 7.0 (TID 91) (10.1.2.3 executor 1): "
       "java.lang.OutOfMemoryError: Java heap space")
PERMISSION = ("[INSUFFICIENT_PERMISSIONS] Insufficient privileges: User does not have SELECT on Table "
              "'main.finance.gl_entries'. SQLSTATE: 42501")


def job_on_cluster(sim, name="nightly_etl", **kw):
    return sim.add_job(name, [{"task_key": "main", "notebook_task": {"notebook_path": "/Repos/x/main"},
                               "job_cluster_key": "etl"}],
                       job_clusters=[{"job_cluster_key": "etl", "new_cluster": dict(CLUSTER)}],
                       email_notifications={"on_failure": ["owner@contoso.example"]}, **kw)


def only(records):
    assert len(records) == 1, [r.key for r in records]
    return records[0]


def test_transient_failure_is_repaired_and_recorded(agent, sim):
    job = job_on_cluster(sim)
    run = sim.fail_run(job, {"main": TaskFailure(error=READ_TIMEOUT)})

    assert agent.deliver(job, run).status_code == 202
    agent.settle()

    record = only(agent.decisions())
    assert record.action is Action.RETRY and record.category.value == "timeout"
    assert record.repair_id is not None and record.outcome == "pending"
    assert record.evidence, "the decision names the line that decided it"
    repairs = sim.requests_to("/runs/repair", "POST")
    assert len(repairs) == 1 and repairs[0].body["rerun_all_failed_tasks"] is True


def out_of_memory_that_a_larger_cluster_fixes(sim) -> tuple[int, int]:
    """A job whose run ran out of memory, and whose rerun succeeds only on a larger cluster: (job, run)."""
    job = job_on_cluster(sim)
    failure = TaskFailure(error=OOM)
    run = sim.fail_run(job, {"main": failure})
    sim.script_repair(run, succeed_if_resized(failure))
    return job, run


def test_out_of_memory_reruns_one_size_larger_and_reverts_after(agent, sim):
    job, run = out_of_memory_that_a_larger_cluster_fixes(sim)

    agent.deliver(job, run)
    agent.settle()
    record = only(agent.decisions())
    assert record.action is Action.RETRY_WITH_NEW_PARAMS
    update = sim.requests_to("/jobs/update", "POST")[0].body
    assert update["new_settings"]["job_clusters"][0]["new_cluster"]["node_type_id"] == "Standard_DS4_v2"
    assert len(sim.requests_to("/runs/repair", "POST")) == 1

    sim.finish_runs()
    agent.poll()
    record = only(agent.decisions())
    assert record.outcome == "succeeded"
    assert record.resize.reverted
    assert sim.job(job)["settings"]["job_clusters"][0]["new_cluster"]["node_type_id"] == "Standard_DS3_v2"


def test_the_end_of_a_resized_rerun_is_emailed_once_naming_the_size_that_worked(agent, sim):
    job, run = out_of_memory_that_a_larger_cluster_fixes(sim)
    agent.deliver(job, run)
    agent.settle()
    assert not list(agent.email_dir.glob("*outcome*")), "nothing to say about the outcome before the rerun ends"

    sim.finish_runs()
    agent.poll()

    [outcome] = agent.email_dir.glob("*outcome*.txt")
    text = outcome.read_text(encoding="utf-8")
    subject = text.splitlines()[0]
    assert subject == (
        "Subject: [RESOLVED · resource] nightly_etl — succeeded on Standard_DS4_v2 (job cluster reverted)"
    )
    assert "To: owner@contoso.example" in text
    assert "Worked:     Standard_DS4_v2, 2 workers" in text and "Original:   Standard_DS3_v2, 2 workers" in text
    assert "make the change permanent in the job's settings" in " ".join(text.split())
    record = only(agent.decisions())
    assert [n.rsplit(":", 1)[1] for n in record.notifications] == ["retry", "outcome"]

    for written in agent.email_dir.glob("*outcome*"):
        written.unlink()
    agent.poll()
    assert not list(agent.email_dir.glob("*outcome*")), "a second poll sends nothing again"


def test_permission_failure_is_emailed_never_retried(agent, sim):
    job = job_on_cluster(sim)
    run = sim.fail_run(job, {"main": TaskFailure(error=PERMISSION)})

    agent.deliver(job, run)
    agent.settle()

    record = only(agent.decisions())
    assert record.action is Action.SEND_EMAIL and record.category.value == "permission"
    assert not sim.requests_to("/runs/repair", "POST")
    assert record.notifications, "a notification was sent for it"


def test_duplicate_webhook_and_poller_produce_exactly_one_action(agent, sim):
    job = job_on_cluster(sim)
    run = sim.fail_run(job, {"main": TaskFailure(error=READ_TIMEOUT)})

    agent.deliver(job, run)
    agent.deliver(job, run)
    agent.settle()
    agent.poll()

    only(agent.decisions())
    assert len(sim.requests_to("/runs/repair", "POST")) == 1


def test_poller_catches_a_failure_no_webhook_reported(agent, sim):
    job = job_on_cluster(sim)
    run = sim.fail_run(job, {"main": TaskFailure(error=READ_TIMEOUT)})

    agent.poll()

    record = only(agent.decisions())
    assert record.run_id == run and record.source == "poller" and record.action is Action.RETRY


def test_jobs_api_throttling_is_retried_and_the_decision_made(agent, sim):
    job = job_on_cluster(sim)
    run = sim.fail_run(job, {"main": TaskFailure(error=READ_TIMEOUT)})
    sim.throttle(times=3, retry_after=0)

    agent.deliver(job, run)
    agent.settle()

    assert only(agent.decisions()).action is Action.RETRY
    assert len(sim.requests_to("/runs/repair", "POST")) == 1


def test_message_for_a_run_that_does_not_exist_goes_to_poison_with_its_reason(agent, sim):
    job = job_on_cluster(sim)

    agent.deliver(job, 987654321)
    agent.settle()

    assert not agent.decisions()
    poison = agent.poison_messages()
    assert len(poison) == 1 and "987654321" in poison[0]
    invocation = agent.host.invocations("process_failure")[-1]
    reason = agent.state("poison", invocation.message_id)
    assert reason and "987654321" in reason["body"] and "does not exist" in reason["reason"].lower()
    assert reason["transient"] is False  # never queued again by the poller


def test_message_that_always_fails_is_retried_then_poisoned_with_its_reason(agent, sim, monkeypatch):
    from shared.exceptions import TransientError
    import shared.worker

    def always_down(event, deps, owner):
        raise TransientError("Jobs API unreachable")

    monkeypatch.setattr(shared.worker, "process", always_down)
    job = job_on_cluster(sim)
    run = sim.fail_run(job, {"main": TaskFailure(error=READ_TIMEOUT)})

    agent.deliver(job, run)
    agent.settle()

    attempts = agent.host.invocations("process_failure")
    assert [i.dequeue_count for i in attempts] == [1, 2, 3, 4, 5]
    assert len(agent.poison_messages()) == 1
    reason = agent.state("poison", attempts[-1].message_id)
    assert "Jobs API unreachable" in reason["reason"] and "5 attempts" in reason["reason"]
    assert reason["transient"] is True and reason["status"] == "poisoned"  # the poller brings it back later


def test_observe_mode_records_and_notifies_but_changes_nothing(agent, sim, monkeypatch):
    from shared import runtime

    monkeypatch.setenv("AGENT_MODE", "observe")
    runtime.reset()
    job = job_on_cluster(sim)
    run = sim.fail_run(job, {"main": TaskFailure(error=OOM)})

    agent.deliver(job, run)
    agent.settle()

    record = only(agent.decisions())
    assert record.mode == "observe" and record.action is Action.RETRY_WITH_NEW_PARAMS
    assert "would have" in record.done
    assert not sim.requests_to("/runs/repair", "POST") and not sim.requests_to("/jobs/update", "POST")


def test_retry_budget_spent_escalates_once(agent, sim, monkeypatch):
    from shared import runtime

    monkeypatch.setenv("MAX_RETRIES", "1")
    runtime.reset()
    job = job_on_cluster(sim)
    run = sim.fail_run(job, {"main": TaskFailure(error=READ_TIMEOUT)})
    sim.script_repair(run, TaskFailure(error=READ_TIMEOUT), times=5)

    agent.deliver(job, run)
    agent.settle()
    sim.finish_runs()
    agent.deliver(job, run)  # the repaired run failed again: Databricks notifies again
    agent.settle()

    records = sorted(agent.decisions(), key=lambda r: r.attempt)
    assert [r.action for r in records] == [Action.RETRY, Action.ESCALATE]
    assert len(sim.requests_to("/runs/repair", "POST")) == 1


def test_wrong_webhook_password_is_refused_and_nothing_is_queued(agent, sim):
    import requests

    job = job_on_cluster(sim)
    run = sim.fail_run(job, {"main": TaskFailure(error=READ_TIMEOUT)})
    payload = {"event_type": "jobs.on_failure", "run": {"run_id": run}, "job": {"job_id": job}}

    answer = requests.post(agent.webhook_url, json=payload, auth=("databricks", "wrong"), timeout=10)
    agent.settle()

    assert answer.status_code == 401
    assert not agent.decisions()


def test_a_chain_of_resizes_ends_back_at_the_original_size(agent, sim):
    job = job_on_cluster(sim)
    failure = TaskFailure(error=OOM)
    run = sim.fail_run(job, {"main": failure})
    sim.script_repair(run, failure)            # the first rerun, one size larger, runs out of memory again
    sim.script_repair(run, "success", times=1)

    agent.deliver(job, run)
    agent.settle()
    sim.finish_runs()
    agent.poll()                                # the follow-up sees the rerun fail: no revert, next decision
    agent.deliver(job, run)
    agent.settle()
    sim.finish_runs()
    agent.poll()

    records = sorted(agent.decisions(), key=lambda r: r.attempt)
    assert [r.action for r in records] == [Action.RETRY_WITH_NEW_PARAMS, Action.RETRY_WITH_NEW_PARAMS]
    nodes = [u.body["new_settings"]["job_clusters"][0]["new_cluster"]["node_type_id"]
             for u in sim.requests_to("/jobs/update", "POST")]
    assert nodes == ["Standard_DS4_v2", "Standard_DS5_v2", "Standard_DS3_v2"]
    assert records[-1].outcome == "succeeded" and records[-1].resize.reverted


def test_a_resize_chain_that_is_escalated_puts_the_original_size_back(agent, sim, monkeypatch):
    from shared import runtime

    monkeypatch.setenv("MAX_RETRIES", "1")
    runtime.reset()
    job = job_on_cluster(sim)
    failure = TaskFailure(error=OOM)
    run = sim.fail_run(job, {"main": failure})
    sim.script_repair(run, failure, times=3)

    agent.deliver(job, run)
    agent.settle()
    sim.finish_runs()
    agent.poll()
    agent.deliver(job, run)
    agent.settle()

    records = sorted(agent.decisions(), key=lambda r: r.attempt)
    assert [r.action for r in records] == [Action.RETRY_WITH_NEW_PARAMS, Action.ESCALATE]
    assert sim.job(job)["settings"]["job_clusters"][0]["new_cluster"]["node_type_id"] == "Standard_DS3_v2"
