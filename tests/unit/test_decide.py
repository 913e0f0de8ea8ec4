"""The retry budget and guard rails."""

import pytest

from shared.decide import DecisionInput, decide, job_controls
from shared.taxonomy import Action, Category


def facts(**kw):
    base = dict(category=Category.NETWORK, proposed=Action.RETRY, attempt=1, max_retries=3)
    base.update(kw)
    return DecisionInput(**base)


def test_transient_failure_on_first_attempt_is_retried():
    assert decide(facts()).action is Action.RETRY


def test_retries_continue_until_the_budget_is_spent():
    assert decide(facts(attempt=3)).action is Action.RETRY
    assert decide(facts(attempt=4)).action is Action.ESCALATE


def test_a_chain_is_escalated_only_once():
    verdict = decide(facts(attempt=5, already_escalated=True))
    assert verdict.action is Action.IGNORE
    assert "escalated already" in verdict.reason


def test_permission_failure_is_never_retried_whatever_the_budget():
    verdict = decide(facts(category=Category.PERMISSION, proposed=Action.SEND_EMAIL, attempt=1, max_retries=10))
    assert verdict.action is Action.SEND_EMAIL


def test_resource_failure_without_resizable_compute_is_emailed_with_the_reason():
    verdict = decide(facts(category=Category.RESOURCE, proposed=Action.RETRY_WITH_NEW_PARAMS,
                           resize_blocker="the failed task runs on serverless"))
    assert verdict.action is Action.SEND_EMAIL
    assert "serverless" in verdict.reason


def test_resource_failure_with_resizable_compute_is_rerun_bigger():
    verdict = decide(facts(category=Category.RESOURCE, proposed=Action.RETRY_WITH_NEW_PARAMS))
    assert verdict.action is Action.RETRY_WITH_NEW_PARAMS


def test_job_tag_turns_the_agent_off():
    verdict = decide(facts(agent_enabled=False))
    assert verdict.action is Action.IGNORE and "ai_agent" in verdict.reason


def test_breaking_change_is_left_to_databricks():
    assert decide(facts(termination_code="BREAKING_CHANGE")).action is Action.IGNORE


def test_cancelled_run_is_ignored():
    assert decide(facts(category=Category.CANCELLED, proposed=Action.IGNORE)).action is Action.IGNORE


def test_zero_budget_escalates_the_first_transient_failure():
    assert decide(facts(max_retries=0)).action is Action.ESCALATE


def test_job_tags_can_lower_but_not_raise_the_budget():
    assert job_controls({"ai_agent_max_retries": "1"}, 3).max_retries == 1
    assert job_controls({"ai_agent_max_retries": "9"}, 3).max_retries == 3


def test_job_tag_values_are_read_case_insensitively_and_garbage_is_ignored():
    assert job_controls({"AI_AGENT": "Off"}, 3).enabled is False
    assert job_controls({"ai_agent": "observe"}, 3).mode == "observe"
    assert job_controls({"ai_agent_max_retries": "lots"}, 3).max_retries is None


# --- typed reason codes and the unsure policy ---------------------------------------------------------------
from shared.decide import UNSURE_MAX_RERUNS, ReasonCode  # noqa: E402


def unsure(**kw):
    base = dict(confidence=0.6, threshold=0.75)
    base.update(kw)
    return facts(**base)


def test_every_verdict_carries_a_typed_reason_code():
    assert decide(facts(confidence=0.9, threshold=0.75)).code is ReasonCode.RULES_SURE
    assert decide(facts(attempt=4)).code is ReasonCode.BUDGET_SPENT
    assert decide(facts(attempt=5, already_escalated=True)).code is ReasonCode.ALREADY_ESCALATED
    assert decide(facts(agent_enabled=False)).code is ReasonCode.AGENT_OFF
    assert decide(facts(category=Category.UNKNOWN, proposed=Action.SEND_EMAIL)).code is ReasonCode.NO_RULE
    assert decide(facts(confidence=0.95, threshold=0.75, llm_outcome="override")).code is ReasonCode.LLM_OVERRIDE
    assert decide(facts(confidence=0.95, threshold=0.75, llm_outcome="agreed")).code is ReasonCode.LLM_AGREED
    assert decide(facts(category=Category.RESOURCE, proposed=Action.RETRY_WITH_NEW_PARAMS,
                        resize_blocker="serverless")).code is ReasonCode.NO_RESIZE


def test_the_gate_is_exact_at_the_threshold_sure_and_just_below_unsure():
    assert decide(facts(confidence=0.75, threshold=0.75, attempt=2)).code is ReasonCode.RULES_SURE
    below = decide(facts(confidence=0.749, threshold=0.75, attempt=2))
    assert below.code is ReasonCode.UNSURE_RERUN_SPENT and below.action is Action.SEND_EMAIL


def test_unsure_never_ignores_and_says_why():
    verdict = decide(unsure(category=Category.CANCELLED, proposed=Action.IGNORE))
    assert verdict.action is Action.SEND_EMAIL and verdict.code is ReasonCode.UNSURE_NOT_IGNORED
    assert verdict.reason.startswith("Unsure: the rules' confidence in cancelled is 0.60, below 0.75")


@pytest.mark.parametrize("category", [Category.PERMISSION, Category.CODE, Category.DATA, Category.QUOTA])
def test_unsure_never_reruns_what_a_rerun_cannot_fix(category):
    for proposed in (Action.RETRY, Action.RETRY_WITH_NEW_PARAMS, Action.SEND_EMAIL):
        verdict = decide(unsure(category=category, proposed=proposed))
        assert verdict.action is Action.SEND_EMAIL and "Unsure" in verdict.reason


def test_unsure_spends_at_most_one_rerun_of_its_chain():
    first = decide(unsure(attempt=1))
    assert first.action is Action.RETRY and first.code is ReasonCode.BELOW_BAR
    assert "Unsure" in first.reason and "no LLM was consulted" in first.reason
    for attempt in range(UNSURE_MAX_RERUNS + 1, 5):
        later = decide(unsure(attempt=attempt))
        assert later.action is Action.SEND_EMAIL and later.code is ReasonCode.UNSURE_RERUN_SPENT


@pytest.mark.parametrize("outcome,code,why", [
    (None, ReasonCode.BELOW_BAR, "no LLM was consulted"),
    ("refused", ReasonCode.LLM_REFUSED, "did not clear its bar"),
    ("failed", ReasonCode.LLM_FAILED, "could not be consulted"),
    ("budget_spent", ReasonCode.LLM_BUDGET_SPENT, "daily budget is spent"),
])
def test_the_unsure_reason_names_why_the_llm_did_not_help(outcome, code, why):
    verdict = decide(unsure(llm_outcome=outcome))
    assert verdict.code is code and why in verdict.reason


def test_an_unknown_failure_is_emailed_not_treated_as_unsure():
    verdict = decide(facts(category=Category.UNKNOWN, proposed=Action.SEND_EMAIL, confidence=0.0, threshold=0.75))
    assert verdict.action is Action.SEND_EMAIL and verdict.code is ReasonCode.NO_RULE


# --- the unsure policy through the pipeline: recorded codes, reasons, the attempt reaching the classifier -----------

def _pipeline(error, **run):
    from shared.events import FailureEvent
    from shared.pipeline import process
    from tests.unit.test_pipeline import MemoryJobsApi, deps_for, run_json

    api = MemoryJobsApi({111: run_json(**run)}, error=error)
    deps, _ = deps_for(api)
    process(FailureEvent(run_id=111), deps, owner="m1")
    return deps.store.get(f"ws:111:{run.get('repairs', 0)}"), api


def test_an_unsure_transient_failure_gets_one_rerun_then_an_email_saying_why():
    vague = "the worker reported an unexpected failure while writing the batch"  # wording only: unsure
    first, api = _pipeline(vague)
    assert first.action is Action.RETRY and first.reason_code == "below_bar" and api.repairs
    assert first.reason.startswith("Unsure: ") and "no LLM was consulted" in first.reason
    second, api = _pipeline(vague, repairs=1)
    assert second.action is Action.SEND_EMAIL and second.reason_code == "unsure_rerun_spent" and not api.repairs


def test_an_unsure_cancellation_read_from_text_is_emailed_not_ignored():
    record, _ = _pipeline("[2025-01-02, 03:04:05 UTC] {local_task_job_runner.py:99} ERROR - Received SIGTERM. "
                          "Terminating subprocesses.")
    assert record.action is Action.SEND_EMAIL and record.reason_code == "unsure_not_ignored"


def test_a_sure_decision_records_rules_sure():
    record, _ = _pipeline("java.net.SocketTimeoutException: Read timed out")
    assert record.action is Action.RETRY and record.reason_code == "rules_sure"


def test_the_pipeline_passes_the_attempt_to_the_classifier():
    limit = "[WORKSPACE_RUN_LIMIT_EXCEEDED] The workspace has reached its limit of active runs."
    first, _ = _pipeline(limit)
    assert first.category is Category.CONCURRENCY
    again, _ = _pipeline(limit, repairs=1)
    assert again.category is Category.QUOTA and again.action is Action.SEND_EMAIL


def test_the_email_of_an_unsure_decision_says_the_agent_was_unsure_and_why_in_both_parts():
    from shared.notify import kind_for
    from shared.notify.render import render
    from shared.notify.sample import sample_record
    from shared.settings import Settings

    record = sample_record(Action.SEND_EMAIL)
    record.confidence = 0.6
    record.reason = decide(unsure(category=Category.CANCELLED, proposed=Action.IGNORE)).reason
    email = render(record, kind_for(record), Settings())
    for part in (email.text, email.html):
        assert "Unsure: the rules&#39; confidence" in part or "Unsure: the rules' confidence" in part
        assert "never ignored" in part
