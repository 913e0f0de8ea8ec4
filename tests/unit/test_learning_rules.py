"""A correction becomes a learned rule that decides the next failure with the same fingerprint; a rule that
would rerun a permission, code, data or quota failure waits for a second, independent confirmation."""

from datetime import datetime, timezone

from shared.classify import FailureSignals, classify
from shared.decision import DecisionRecord
from shared.learning.feedback import parse_feedback
from shared.learning.learned_rules import MemoryLearnedRuleStore, learn, refute_by_outcome, with_learned_rules
from shared.learning.model import LearnedRule
from shared.tables import MemoryEntityTable
from shared.learning.learned_rules import LearnedRuleStore
from shared.taxonomy import Action, Category

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)
REFUSED = FailureSignals("java.net.ConnectException: Connection refused (Connection refused)\n"
                         "\tat java.base/sun.nio.ch.Net.connect0(Native Method)", result_state="FAILED")
PERMISSION = FailureSignals("[INSUFFICIENT_PERMISSIONS] Insufficient privileges: User does not have SELECT on Table "
                            "'main.finance.gl_entries'. SQLSTATE: 42501", result_state="FAILED")
OTHER = FailureSignals("java.net.SocketTimeoutException: Read timed out", result_state="FAILED")


def decided(signals, key="ws:100:0", classifier=classify) -> DecisionRecord:
    c = classifier(signals)
    return DecisionRecord(key=key, workspace_id="ws", run_id=100, chain_id="ws:100", category=c.category,
                          action=c.action, proposed_action=c.action, evidence=list(c.evidence),
                          fingerprint=c.fingerprint, rule_id=c.rule_id)


def answer(record, by="ann", principal=None, **body):
    """An API answer; `principal` is what App Service Authentication verified (the default: whoever typed `by`)."""
    return parse_feedback({"by": by, **body}, decision_key=record.key, via="api", now=NOW,
                          principal=by if principal is None else principal or None)


def test_a_correction_decides_the_next_failure_with_that_fingerprint_and_says_so():
    rules = MemoryLearnedRuleStore()
    record = decided(REFUSED)
    assert record.category is Category.NETWORK

    rule, _ = learn(answer(record, correct=False, category="code", comment="the service was retired"), record, rules)

    again = with_learned_rules(classify, rules)(REFUSED)
    assert (again.category, again.action, again.rule_id) == (Category.CODE, Action.SEND_EMAIL, rule.rule_id)
    assert again.evidence[0].startswith("corrected by feedback on decision ws:100:0 (ann, 2026-01-10)")
    assert "the service was retired" in again.evidence[0]


def test_a_failure_with_another_fingerprint_is_left_to_the_shipped_rules():
    rules = MemoryLearnedRuleStore()
    record = decided(REFUSED)
    learn(answer(record, correct=False, category="code"), record, rules)

    assert with_learned_rules(classify, rules)(OTHER) == classify(OTHER)


def test_a_right_answer_or_a_wrong_one_without_the_right_answer_teaches_nothing():
    rules = MemoryLearnedRuleStore()
    record = decided(REFUSED)
    assert learn(answer(record, correct=True), record, rules)[0] is None
    rule, message = learn(answer(record, correct=False), record, rules)
    assert rule is None and "name the right category" in message
    assert rules.all() == []


def test_one_person_cannot_turn_a_permission_failure_into_a_rerun():
    rules = MemoryLearnedRuleStore()
    record = decided(PERMISSION)
    assert record.category is Category.PERMISSION

    rule, message = learn(answer(record, correct=False, action="RETRY"), record, rules)
    again = with_learned_rules(classify, rules)(PERMISSION)

    assert rule.status == "awaiting_confirmation" and "waits" in rule.status_note
    assert again.action is Action.SEND_EMAIL and again.category is Category.PERMISSION
    assert "waits for a second confirmation" in again.evidence[-1]


def test_the_same_person_twice_is_not_a_second_confirmation():
    rules = MemoryLearnedRuleStore()
    record = decided(PERMISSION)
    learn(answer(record, correct=False, action="RETRY", by="ann"), record, rules)
    rule, _ = learn(answer(record, correct=False, action="RETRY", by=" ANN "), record, rules)
    assert rule.status == "awaiting_confirmation"


def test_a_second_person_confirms_it_and_then_it_reruns():
    rules = MemoryLearnedRuleStore()
    record = decided(PERMISSION)
    learn(answer(record, correct=False, action="RETRY", by="ann"), record, rules)
    rule, _ = learn(answer(record, correct=False, action="RETRY", by="bob"), record, rules)

    again = with_learned_rules(classify, rules)(PERMISSION)
    assert rule.status == "active" and again.action is Action.RETRY


def test_two_names_typed_with_the_function_key_are_one_confirmation():
    """Without a principal the platform verified, one function key is one identity, whatever names it types."""
    rules = MemoryLearnedRuleStore()
    record = decided(PERMISSION)
    learn(answer(record, correct=False, action="RETRY", by="ann", principal=""), record, rules)
    rule, _ = learn(answer(record, correct=False, action="RETRY", by="bob", principal=""), record, rules)
    assert rule.status == "awaiting_confirmation" and rule.independent_confirmations() == 1
    assert with_learned_rules(classify, rules)(PERMISSION).action is Action.SEND_EMAIL


def test_a_different_correction_replaces_the_rule_and_starts_its_confirmations_over():
    rules = MemoryLearnedRuleStore()
    record = decided(PERMISSION)
    learn(answer(record, correct=False, action="RETRY", by="ann"), record, rules)
    rule, _ = learn(answer(record, correct=False, category="data", by="bob"), record, rules)
    assert (rule.category, rule.action, rule.corrected_by, rule.status) == (Category.DATA, Action.SEND_EMAIL, "bob",
                                                                            "active")
    assert rule.independent_confirmations() == 1


def test_a_disabled_rule_decides_nothing_and_a_new_correction_does_not_revive_it():
    rules = MemoryLearnedRuleStore()
    record = decided(REFUSED)
    rule, _ = learn(answer(record, correct=False, category="code"), record, rules)
    rules.update(rule.fingerprint, lambda r: r.model_copy(update={"status": "disabled"}))
    rule, _ = learn(answer(record, correct=False, category="data", by="bob"), record, rules)

    assert rule.status == "disabled"
    assert with_learned_rules(classify, rules)(REFUSED) == classify(REFUSED)


def test_a_rerun_rule_whose_rerun_failed_the_same_way_stops_deciding():
    rules = MemoryLearnedRuleStore()
    record = decided(OTHER)
    rule, _ = learn(answer(record, correct=False, category="network"), record, rules)  # timeout -> network: RETRY
    learned = with_learned_rules(classify, rules)
    assert learned(OTHER).rule_id == rule.rule_id

    rerun = decided(OTHER, key="ws:100:1", classifier=learned)
    rules.update(rule.fingerprint, lambda r: refute_by_outcome(r, rerun))

    assert rules.get(rule.fingerprint).status == "refuted"
    assert learned(OTHER) == classify(OTHER)


def test_two_answers_at_once_both_count():
    """Optimistic concurrency: an update that lost the race reads the rule again instead of overwriting it."""
    table = MemoryEntityTable()
    rules = LearnedRuleStore(table)
    record = decided(PERMISSION)
    learn(answer(record, correct=False, action="RETRY", by="ann"), record, rules)

    class Racing(LearnedRuleStore):
        raced = False

    racing = Racing(table)
    original = racing.update

    def update(fingerprint, change):
        def change_after_a_rival(current):
            if not Racing.raced:  # bob's answer lands between our read and our write
                Racing.raced = True
                learn(answer(record, correct=False, action="RETRY", by="bob"), record, rules)
            return change(current)
        return original(fingerprint, change_after_a_rival)

    racing.update = update
    rule, _ = learn(answer(record, correct=False, action="RETRY", by="cyd"), record, racing)

    assert sorted(c.who for c in rule.confirmations) == ["ann", "bob", "cyd"]


def test_a_stored_rule_reads_back_equal():
    rules = MemoryLearnedRuleStore()
    record = decided(REFUSED)
    rule, _ = learn(answer(record, correct=False, category="code"), record, rules)
    assert rules.find(rule.rule_id) == rule == LearnedRule.model_validate_json(rule.model_dump_json())


def link_answer(record, by, decision_key=None, **body):
    return parse_feedback({"by": by, **body}, decision_key=decision_key or record.key, via="link", now=NOW)


def test_two_names_typed_into_one_emails_link_are_one_confirmation():
    """Anyone with the link can type any name: the same link cannot confirm its own correction."""
    rules = MemoryLearnedRuleStore()
    record = decided(PERMISSION)
    learn(link_answer(record, "ann", correct=False, action="RETRY"), record, rules)
    rule, _ = learn(link_answer(record, "bob", correct=False, action="RETRY"), record, rules)
    assert rule.status == "awaiting_confirmation" and rule.independent_confirmations() == 1


def test_the_link_in_another_failures_email_is_an_independent_confirmation():
    rules = MemoryLearnedRuleStore()
    record = decided(PERMISSION)
    later = decided(PERMISSION, key="ws:200:0")
    learn(link_answer(record, "ann", correct=False, action="RETRY"), record, rules)
    rule, _ = learn(link_answer(later, "bob", correct=False, action="RETRY"), later, rules)
    assert rule.status == "active"


def test_a_yes_on_a_decision_made_by_a_learned_rule_confirms_the_rule():
    rules = MemoryLearnedRuleStore()
    record = decided(PERMISSION)
    learn(answer(record, correct=False, action="RETRY", by="ann"), record, rules)
    learn(answer(record, correct=False, action="RETRY", by="bob"), record, rules)
    rerun_by_rule = decided(PERMISSION, key="ws:300:0", classifier=with_learned_rules(classify, rules))
    assert rerun_by_rule.rule_id.startswith("learned-")

    rule, message = learn(answer(rerun_by_rule, correct=True, by="cyd"), rerun_by_rule, rules)
    assert rule.independent_confirmations() == 3 and "3 confirmations" in message
