"""Corrections become learned rules: data in Table Storage, one per fingerprint, consulted before the shipped rules.

The safety rule: a learned rule never turns a permission, code, data or quota failure into a rerun on one
person's word. Such a rule waits (status awaiting_confirmation) until a second person, or a rerun that
succeeded, confirms it; until then the shipped rules decide, and the evidence says a rule is waiting.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.classify import Classification, FailureSignals
from shared.decision import DecisionRecord
from shared.learning.model import LEARNED_PREFIX, RETRY_ACTIONS, Confirmation, Feedback, LearnedRule
from shared.tables import EntityTable, MemoryEntityTable
from shared.taxonomy import FIRST_ACTION

log = logging.getLogger(__name__)

Classifier = Callable[[FailureSignals], Classification]
_PARTITION = "rule"
_ATTEMPTS = 8  # optimistic-concurrency retries when two answers update one rule at once


class LearnedRuleStore:
    """Learned rules by fingerprint, over an EntityTable (Azure) or a MemoryEntityTable (tests)."""

    def __init__(self, table: EntityTable | MemoryEntityTable) -> None:
        self._table = table

    def get(self, fingerprint: str) -> LearnedRule | None:
        entity, _ = self._table.read(_PARTITION, fingerprint)
        return _load(entity) if entity is not None else None

    def find(self, rule_id: str) -> LearnedRule | None:
        """A rule by its id (learned-<fingerprint>) or by its fingerprint."""
        return self.get(rule_id.removeprefix(LEARNED_PREFIX)) if rule_id else None

    def all(self) -> list[LearnedRule]:
        return sorted((_load(e) for e, _ in self._table.query(_PARTITION)), key=lambda r: r.corrected_at)

    def update(self, fingerprint: str, change: Callable[[LearnedRule | None], LearnedRule | None]) -> LearnedRule | None:
        """Apply `change` to the stored rule (None: none yet) and save what it returns, safely under concurrency."""
        for _ in range(_ATTEMPTS):
            entity, etag = self._table.read(_PARTITION, fingerprint)
            current = _load(entity) if entity is not None else None
            changed = change(current.model_copy(deep=True) if current else None)
            if changed is None or changed == current:
                return current
            saved = (self._table.insert(_entity(changed)) if entity is None
                     else self._table.replace_if_unchanged(_entity(changed), etag))
            if saved:
                return changed
        from shared.exceptions import TransientError

        raise TransientError(f"learned rule {fingerprint} kept changing under this update; try again")


def _entity(rule: LearnedRule) -> dict[str, Any]:
    return {"PartitionKey": _PARTITION, "RowKey": rule.fingerprint, "value": rule.model_dump_json(),
            "status": rule.status, "category": rule.category.value, "action": rule.action.value}


def _load(entity: dict[str, Any]) -> LearnedRule:
    return LearnedRule.model_validate(json.loads(entity["value"]))


class TableLearnedRuleStore(LearnedRuleStore):
    def __init__(self, table_client: Any) -> None:
        super().__init__(EntityTable(table_client, "learned rule"))


class MemoryLearnedRuleStore(LearnedRuleStore):
    def __init__(self) -> None:
        super().__init__(MemoryEntityTable())


# --- from feedback to a rule ---------------------------------------------------------------------------
def learn(feedback: Feedback, record: DecisionRecord, rules: LearnedRuleStore) -> tuple[LearnedRule | None, str]:
    """What a person's answer teaches: a new or confirmed rule for the decision's fingerprint, and why, in words."""
    if not record.fingerprint:
        return None, "recorded; this failure has no fingerprint, so nothing can be learned from it"
    if feedback.correct:
        if not (record.rule_id or "").startswith(LEARNED_PREFIX):
            return None, "recorded: thank you"
        rule = rules.update(record.fingerprint, lambda r: _confirm(r, feedback) if r else None)
        return rule, f"recorded; learned rule {record.rule_id} has {_standing(rule)}"
    if feedback.category is None and feedback.action is None:
        return None, "recorded; name the right category or action to teach the agent"
    category = feedback.category or record.category
    action = feedback.action or FIRST_ACTION[category]

    def change(current: LearnedRule | None) -> LearnedRule:
        if current is not None and (current.category, current.action) == (category, action):
            return _confirm(current, feedback)
        rule = LearnedRule(
            fingerprint=record.fingerprint, category=category, action=action, decision_key=record.key,
            corrected_by=feedback.by, corrected_at=feedback.at, comment=feedback.comment,
            original_category=record.category, original_action=record.action,
            evidence=record.evidence[0] if record.evidence else "",
            status="disabled" if current is not None and current.status == "disabled" else "active",
            confirmations=[_confirmation(feedback)],
        )
        return _settle(rule)

    rule = rules.update(record.fingerprint, change)
    assert rule is not None
    return rule, f"recorded; learned rule {rule.rule_id} ({rule.category.value} → {rule.action.value}) has {_standing(rule)}"


def _confirm(rule: LearnedRule, feedback: Feedback) -> LearnedRule:
    new = _confirmation(feedback)
    if not any(c.kind == "feedback" and c.identity == new.identity and c.who.lower() == new.who.lower()
               for c in rule.confirmations):
        rule.confirmations.append(new)
    return _settle(rule)


def _confirmation(feedback: Feedback) -> Confirmation:
    return Confirmation(kind="feedback", who=" ".join(feedback.by.split()), decision_key=feedback.decision_key,
                        at=feedback.at, via=feedback.via, principal=feedback.principal)


def confirm_by_outcome(rule: LearnedRule, record: DecisionRecord, at: datetime) -> LearnedRule:
    """A rerun of `record` (a decision on this fingerprint) succeeded: an independent confirmation."""
    if not any(c.kind == "outcome" and c.decision_key == record.key for c in rule.confirmations):
        rule.confirmations.append(Confirmation(kind="outcome", who=f"rerun of decision {record.key}",
                                               decision_key=record.key, at=at))
    return _settle(rule)


def refute_by_outcome(rule: LearnedRule, record: DecisionRecord) -> LearnedRule:
    """A rerun this rule decided failed again the same way: a rerun rule stops deciding (no retry storms)."""
    if record.key not in rule.refuted_by:
        rule.refuted_by.append(record.key)
    if rule.action in RETRY_ACTIONS and rule.status in ("active", "awaiting_confirmation"):
        rule.status = "refuted"
        rule.status_note = f"its rerun of decision {record.key} failed again the same way; the shipped rules decide"
    return rule


def _settle(rule: LearnedRule) -> LearnedRule:
    """The status the safety rule allows (an operator's disable, and a refutation, stay)."""
    if rule.status in ("disabled", "refuted"):
        return rule
    if rule.turns_into_retry and rule.independent_confirmations() < 2:
        rule.status = "awaiting_confirmation"
        rule.status_note = (f"would rerun a {rule.original_category.value} failure: waits for a second, independent "
                            "confirmation (another verified person, another decision's email link, or a rerun that "
                            "succeeds)")
    else:
        rule.status, rule.status_note = "active", ""
    return rule


def _standing(rule: LearnedRule | None) -> str:
    if rule is None:
        return "no rule"
    people = rule.independent_confirmations()
    return f"{people} confirmation{'s' if people != 1 else ''} and is {rule.status.replace('_', ' ')}"


# --- consulted first by the classification step ------------------------------------------------------------
def with_learned_rules(classify: Classifier, rules: LearnedRuleStore) -> Classifier:
    """`classify`, then the learned rule for the failure's fingerprint (if one is active) decides instead."""

    def classify_learning(signals: FailureSignals) -> Classification:
        shipped = classify(signals)
        rule = rules.get(shipped.fingerprint) if shipped.fingerprint else None
        return apply_rule(shipped, rule)

    return classify_learning


def apply_rule(shipped: Classification, rule: LearnedRule | None) -> Classification:
    """The classification to decide on, given the learned rule for its fingerprint."""
    if rule is None or rule.status in ("disabled", "refuted"):
        return shipped
    if rule.status == "awaiting_confirmation":
        waiting = (f"learned rule {rule.rule_id} (feedback on decision {rule.decision_key}) would {rule.action.value}; "
                   "it waits for a second confirmation, so the shipped rules decide")
        return _replace(shipped, evidence=(*shipped.evidence, waiting))
    when = rule.corrected_at.strftime("%Y-%m-%d")
    line = (f"corrected by feedback on decision {rule.decision_key} ({rule.corrected_by}, {when}): "
            f"{rule.original_category.value} → {rule.category.value}, {rule.action.value}")
    if rule.comment:
        line += f" — {rule.comment[:120]}"
    return _replace(shipped, category=rule.category, action=rule.action, confidence=1.0,
                    evidence=(line, *shipped.evidence[:2]), rule_id=rule.rule_id)


def _replace(c: Classification, **changes: Any) -> Classification:
    from dataclasses import replace

    return replace(c, **changes)
