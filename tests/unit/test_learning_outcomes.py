"""The timer reads outcomes off the agent's reruns: success confirms, the same fingerprint again refutes, a
different failure is inconclusive, a resized rerun that worked records its size; learned rules hear of it."""

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from shared.databricks.models import Job, Run
from shared.decision import DecisionRecord, ResizeChange
from shared.learning.feedback import MemoryFeedbackStore
from shared.learning.learned_rules import MemoryLearnedRuleStore
from shared.learning.loop import LearningLoop
from shared.learning.model import Confirmation, LearnedRule
from shared.pipeline import PipelineDeps
from shared.poller import poll
from shared.settings import Settings
from shared.state import MemoryStateStore
from shared.store import MemoryDecisionStore
from shared.taxonomy import Action, Category

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)
FP = "0123456789abcdef"


@dataclass
class JobsApi:
    """runs/get of run 911: terminated with `result`, repaired once (repair 5501), now at repair_count 1."""

    result: str = "SUCCESS"

    def list_runs(self, **_):
        return []

    def get_run(self, run_id):
        state = {"life_cycle_state": "TERMINATED", "result_state": self.result}
        return Run.model_validate({"run_id": 911, "job_id": 42, "state": state, "repair_history": [
            {"type": "ORIGINAL", "id": 911, "state": {"life_cycle_state": "TERMINATED", "result_state": "FAILED"}},
            {"type": "REPAIR", "id": 5501, "state": state}]})

    def get_job(self, job_id):
        return Job.model_validate({"job_id": job_id, "settings": {"name": "nightly_etl"}})


class Silent:
    def notify(self, record, job, kind=None):
        return []


def setup(result="SUCCESS", **changes):
    values = dict(key="ws:911:0", workspace_id="ws", job_id=42, run_id=911, chain_id="ws:911",
                  category=Category.TIMEOUT, action=Action.RETRY, fingerprint=FP, status="done", outcome="pending",
                  repair_id=5501)
    record = DecisionRecord(**{**values, **changes})
    learning = LearningLoop(MemoryLearnedRuleStore(), MemoryFeedbackStore(), signing_key=lambda: None)
    deps = PipelineDeps(
        settings=Settings(databricks_workspace_url="https://adb-1.azuredatabricks.net", databricks_workspace_id="1"),
        jobs_api=lambda ws: JobsApi(result), workspace_key=lambda ws: "ws", store=MemoryDecisionStore(),
        state=MemoryStateStore(), notifier=Silent(), classify=None, enqueue=lambda event, delay: None,
        learning=learning, clock=lambda: NOW,
    )
    deps.store.save(record)
    return deps


def next_failure(fingerprint, category=Category.TIMEOUT):
    return DecisionRecord(key="ws:911:1", workspace_id="ws", run_id=911, repair_count=1, chain_id="ws:911",
                          category=category, action=Action.RETRY, fingerprint=fingerprint, status="done")


def test_a_rerun_that_succeeds_confirms_the_decision_with_when_it_was_seen():
    deps = setup()
    poll(deps, now=NOW)
    record = deps.store.get("ws:911:0")
    assert (record.outcome, record.outcome_verdict, record.outcome_seen_at) == ("succeeded", "confirmed", NOW)


def test_a_resized_rerun_that_succeeds_records_the_size_that_worked():
    resize = ResizeChange(job_cluster_key="etl", before={"node_type_id": "Standard_DS3_v2", "num_workers": 2},
                          after={"node_type_id": "Standard_DS4_v2", "num_workers": 2}, summary="node DS3 → DS4",
                          kept="changed")
    deps = setup(resize=resize, action=Action.RETRY_WITH_NEW_PARAMS)
    poll(deps, now=NOW)
    record = deps.store.get("ws:911:0")
    assert record.worked_size == "Standard_DS4_v2 × 2 workers"
    assert "Standard_DS4_v2" in record.outcome_note


def test_a_rerun_that_fails_again_the_same_way_refutes_the_decision():
    deps = setup("FAILED")
    deps.store.save(next_failure(FP))
    poll(deps, now=NOW)
    record = deps.store.get("ws:911:0")
    assert record.outcome == "failed" and record.outcome_verdict == "refuted"
    assert "ws:911:1" in record.outcome_note


def test_a_rerun_that_fails_differently_neither_confirms_nor_refutes():
    deps = setup("FAILED")
    deps.store.save(next_failure("fedcba9876543210", Category.DATA))
    poll(deps, now=NOW)
    assert deps.store.get("ws:911:0").outcome_verdict == "inconclusive"


def test_a_verdict_waits_for_the_decision_on_the_reruns_failure_and_a_later_tick_settles_it():
    deps = setup("FAILED")
    poll(deps, now=NOW)
    assert deps.store.get("ws:911:0").outcome_verdict == "awaiting"

    deps.store.save(next_failure(FP))
    poll(deps, now=NOW + timedelta(minutes=5))
    assert deps.store.get("ws:911:0").outcome_verdict == "refuted"


def test_a_verdict_never_settled_gives_up_after_days_instead_of_waiting_forever():
    deps = setup("FAILED")
    poll(deps, now=NOW)
    poll(deps, now=NOW + timedelta(days=4))
    assert deps.store.get("ws:911:0").outcome_verdict == "inconclusive"


def rule(**changes):
    values = dict(fingerprint=FP, category=Category.NETWORK, action=Action.RETRY, decision_key="ws:1:0",
                  corrected_by="ann", corrected_at=NOW, original_category=Category.PERMISSION,
                  status="awaiting_confirmation",
                  confirmations=[Confirmation(kind="feedback", who="ann", decision_key="ws:1:0", at=NOW)])
    values.update(changes)
    return LearnedRule(**values)


def test_a_successful_rerun_of_that_fingerprint_is_the_second_confirmation_a_rerun_rule_waits_for():
    deps = setup()
    deps.learning.rules.update(FP, lambda _: rule())
    poll(deps, now=NOW)
    learned = deps.learning.rules.get(FP)
    assert learned.status == "active"
    assert [c.kind for c in learned.confirmations] == ["feedback", "outcome"]


def test_a_rerun_decided_by_a_learned_rule_that_fails_the_same_way_stops_the_rule():
    deps = setup("FAILED", rule_id="learned-" + FP)
    deps.learning.rules.update(FP, lambda _: rule(status="active", original_category=Category.TIMEOUT))
    deps.store.save(next_failure(FP))
    poll(deps, now=NOW)
    learned = deps.learning.rules.get(FP)
    assert learned.status == "refuted" and learned.refuted_by == ["ws:911:0"]


def test_an_unreachable_rules_table_does_not_lose_the_outcome():
    deps = setup()

    def broken(*_):
        from shared.exceptions import TransientError
        raise TransientError("table storage unavailable (read learned rule): ServiceRequestError")

    deps.learning.rules.update = broken
    report = poll(deps, now=NOW)
    assert deps.store.get("ws:911:0").outcome_verdict == "confirmed" and not report.errors


def test_the_reruns_failure_is_looked_up_by_its_own_repair_not_by_the_runs_latest():
    from shared.learning.outcomes import rerun_failure_key

    twice = Run.model_validate({"run_id": 911, "job_id": 42, "state": {"life_cycle_state": "TERMINATED",
                                                                         "result_state": "FAILED"},
                                "repair_history": [{"type": "ORIGINAL", "id": 911}, {"type": "REPAIR", "id": 5501},
                                                   {"type": "REPAIR", "id": 5502}]})
    first = DecisionRecord(key="ws:911:0", workspace_id="ws", run_id=911, chain_id="ws:911", repair_id=5501)
    assert twice.repair_count == 2
    assert rerun_failure_key(first, twice) == "ws:911:1"
    run_now = first.model_copy(update={"repair_id": None, "new_run_id": 977})
    assert rerun_failure_key(run_now, twice.model_copy(update={"run_id": 977})) == "ws:977:0"
