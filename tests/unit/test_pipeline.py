"""The pipeline's own rules, with every I/O replaced by memory (the e2e tests run it for real)."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.classify import classify
from shared.databricks.models import Job, Run, RunOutput
from shared.decision import DecisionRecord
from shared.events import FailureEvent
from shared.pipeline import PipelineDeps, process
from shared.settings import Settings
from shared.state import MemoryStateStore
from shared.store import MemoryDecisionStore
from shared.taxonomy import Action

TIMEOUT = "java.net.SocketTimeoutException: Read timed out"


def run_json(run_id=111, life="TERMINATED", result="FAILED", repairs=0, attempt=0, error_task="main"):
    history = [{"type": "ORIGINAL", "id": run_id}] + [{"type": "REPAIR", "id": 500 + i} for i in range(repairs)]
    return {
        "run_id": run_id, "job_id": 42, "run_name": "nightly", "state": {"life_cycle_state": life, "result_state": result},
        "tasks": [{"run_id": run_id + 1, "task_key": error_task, "attempt_number": attempt,
                   "state": {"life_cycle_state": life, "result_state": result}, "job_cluster_key": "etl"}],
        "repair_history": history,
    }


@dataclass
class MemoryJobsApi:
    runs: dict[int, dict]
    error: str = TIMEOUT
    repairs: list[int] = field(default_factory=list)

    def get_run(self, run_id):
        return Run.model_validate(self.runs[run_id])

    def get_run_output(self, task_run_id):
        return RunOutput(error=self.error)

    def get_cluster(self, cluster_id):
        raise AssertionError("not needed")

    def get_job(self, job_id):
        return Job.model_validate({"job_id": job_id, "settings": {"name": "nightly"}})

    def repair_run(self, run_id, *, latest_repair_id, job_parameters=None):
        self.repairs.append(run_id)
        return 900 + len(self.repairs)


@dataclass
class Notifier:
    sent: list[DecisionRecord] = field(default_factory=list)

    def notify(self, record, job):
        self.sent.append(record)
        return [f"{record.key}:n"]


def deps_for(api, **settings):
    queued: list[tuple[FailureEvent, int]] = []
    deps = PipelineDeps(
        settings=Settings(**settings), jobs_api=lambda ws: api, workspace_key=lambda ws: "ws",
        store=MemoryDecisionStore(), state=MemoryStateStore(), notifier=Notifier(), classify=classify,
        enqueue=lambda event, delay: queued.append((event, delay)),
    )
    return deps, queued


def test_task_level_event_with_a_running_parent_is_deferred_not_decided():
    api = MemoryJobsApi({111: run_json(life="RUNNING", result=None)})
    deps, queued = deps_for(api, defer_seconds=45)

    result = process(FailureEvent(run_id=111, task_run_id=112, task_key="main"), deps, owner="m1")

    assert result.status == "deferred"
    assert queued[0][1] == 45 and queued[0][0].defer_count == 1 and queued[0][0].source == "deferred"
    assert deps.store.get("ws:111:0") is None


def test_job_level_event_for_a_run_that_is_running_again_is_looked_at_later():
    api = MemoryJobsApi({111: run_json(life="RUNNING", result=None, repairs=1)})
    deps, queued = deps_for(api)

    assert process(FailureEvent(run_id=111), deps, owner="m1").status == "deferred"
    assert len(queued) == 1 and not api.repairs


def test_a_job_whose_settings_cannot_be_read_is_not_rerun():
    from shared.databricks.errors import PermissionDenied

    class NoJobRead(MemoryJobsApi):
        def get_job(self, job_id):
            raise PermissionDenied("no CAN_VIEW on job 42", status=403, error_code="PERMISSION_DENIED")

    api = NoJobRead({111: run_json()})
    deps, _ = deps_for(api)

    result = process(FailureEvent(run_id=111), deps, owner="m1")

    assert result.action is Action.SEND_EMAIL and not api.repairs


def test_a_run_that_timed_out_is_a_timeout_even_when_its_tasks_read_cancelled():
    timed_out = run_json(result="TIMEDOUT")
    timed_out["tasks"][0]["state"]["result_state"] = "CANCELED"
    api = MemoryJobsApi({111: timed_out}, error="")
    deps, _ = deps_for(api)

    process(FailureEvent(run_id=111), deps, owner="m1")

    record = deps.store.get("ws:111:0")
    assert record.category.value == "timeout" and record.action is Action.RETRY


def test_a_run_that_ended_in_success_is_skipped():
    api = MemoryJobsApi({111: run_json(result="SUCCESS")})
    deps, _ = deps_for(api)

    assert process(FailureEvent(run_id=111), deps, owner="m1").status == "skipped"


def test_a_repaired_run_failing_again_is_the_next_attempt_of_the_same_chain():
    api = MemoryJobsApi({111: run_json(repairs=2)})
    deps, _ = deps_for(api)

    process(FailureEvent(run_id=111), deps, owner="m1")

    record = deps.store.get("ws:111:2")
    assert record.attempt == 3 and record.chain_id == "ws:111"


def test_databricks_own_task_retries_count_as_attempts():
    api = MemoryJobsApi({111: run_json(attempt=2)})
    deps, _ = deps_for(api, max_retries=2)

    process(FailureEvent(run_id=111), deps, owner="m1")

    assert deps.store.get("ws:111:0").action is Action.ESCALATE


def test_a_run_started_by_run_now_continues_the_chain_it_came_from():
    api = MemoryJobsApi({222: run_json(run_id=222)})
    deps, _ = deps_for(api)
    deps.state.put("rerun", "ws:222", {"chain_id": "ws:111", "attempt": 2})

    process(FailureEvent(run_id=222), deps, owner="m1")

    record = deps.store.get("ws:222:0")
    assert (record.chain_id, record.attempt) == ("ws:111", 2)


def test_redelivery_after_acting_only_finishes_the_notification():
    api = MemoryJobsApi({111: run_json()})
    deps, _ = deps_for(api)
    claimed = deps.store.claim(DecisionRecord(key="ws:111:0", workspace_id="ws", run_id=111, chain_id="ws:111"), "m1")
    assert claimed.granted
    acted = deps.store.get("ws:111:0").model_copy(update={"status": "acted", "action": Action.RETRY,
                                                          "done": "repaired run 111 (repair 901)"})
    deps.store.save(acted)

    result = process(FailureEvent(run_id=111), deps, owner="m1")

    assert result.status == "decided"
    assert not api.repairs, "the repair is not sent a second time"
    assert deps.store.get("ws:111:0").status == "done" and deps.notifier.sent


def test_a_second_message_for_a_decided_run_is_a_duplicate():
    api = MemoryJobsApi({111: run_json()})
    deps, _ = deps_for(api)

    process(FailureEvent(run_id=111), deps, owner="m1")
    result = process(FailureEvent(run_id=111, source="poller"), deps, owner="m2")

    assert result.status == "duplicate" and api.repairs == [111]


def test_observe_mode_sends_no_repair():
    api = MemoryJobsApi({111: run_json()})
    deps, _ = deps_for(api, agent_mode="observe")

    process(FailureEvent(run_id=111), deps, owner="m1")

    assert not api.repairs and "would have repaired" in deps.store.get("ws:111:0").done


def test_a_retry_after_a_transient_error_in_the_repair_still_repairs():
    from shared.exceptions import TransientError

    class FlakyRepair(MemoryJobsApi):
        def repair_run(self, run_id, *, latest_repair_id, job_parameters=None):
            if not getattr(self, "failed_once", False):
                self.failed_once = True
                raise TransientError("503 from runs/repair")
            return super().repair_run(run_id, latest_repair_id=latest_repair_id, job_parameters=job_parameters)

    api = FlakyRepair({111: run_json()})
    deps, _ = deps_for(api)
    try:
        process(FailureEvent(run_id=111), deps, owner="m1")
    except TransientError:
        pass

    result = process(FailureEvent(run_id=111), deps, owner="m1")  # the queue redelivers the same message

    assert result.status == "decided" and api.repairs == [111]
    assert deps.store.get("ws:111:0").status == "done" and deps.notifier.sent


def test_an_action_databricks_refuses_becomes_an_email_not_a_lost_failure():
    from shared.databricks.errors import PermissionDenied

    class NoRepairRight(MemoryJobsApi):
        def repair_run(self, run_id, *, latest_repair_id, job_parameters=None):
            raise PermissionDenied("User does not have CAN_MANAGE_RUN on job 42", status=403,
                                   error_code="PERMISSION_DENIED")

    api = NoRepairRight({111: run_json()})
    deps, _ = deps_for(api)

    result = process(FailureEvent(run_id=111), deps, owner="m1")

    record = deps.store.get("ws:111:0")
    assert result.action is Action.SEND_EMAIL and record.status == "done"
    assert "CAN_MANAGE_RUN" in record.reason and deps.notifier.sent


def test_a_one_time_submitted_run_is_left_to_its_orchestrator():
    api = MemoryJobsApi({111: {**run_json(), "run_type": "SUBMIT_RUN"}})
    deps, _ = deps_for(api)

    result = process(FailureEvent(run_id=111), deps, owner="m1")

    assert result.status == "skipped" and "SUBMIT_RUN" in result.detail and not api.repairs
