"""The retry budget and guard rails."""

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
