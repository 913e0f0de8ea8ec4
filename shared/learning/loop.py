"""The learning loop as the rest of the agent sees it: one object, built once per worker (shared.wiring).

The classification step asks it first (`classifier`), the timer tells it how reruns ended (`rerun_ended`,
`judge_awaiting`), the feedback endpoints hand it people's answers (`answer`) and ask it to check links.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.decision import DecisionRecord
from shared.exceptions import AgentError
from shared.learning import outcomes
from shared.learning.feedback import FeedbackStore
from shared.learning.learned_rules import (
    Classifier,
    LearnedRuleStore,
    confirm_by_outcome,
    learn,
    refute_by_outcome,
    with_learned_rules,
)
from shared.learning.model import LEARNED_PREFIX, RETRY_ACTIONS, Feedback, LearnedRule
from shared.learning.signing import LinkCheck, check_link

if TYPE_CHECKING:
    from shared.databricks.models import Run
    from shared.store import DecisionStore

log = logging.getLogger(__name__)


@dataclass
class LearningLoop:
    """Learned rules, feedback, outcomes and the link key, behind the few calls the agent makes."""

    rules: LearnedRuleStore
    feedback: FeedbackStore
    signing_key: Callable[[], bytes | None]  # read when needed (Key Vault); None when none is configured

    def classifier(self, classify: Classifier) -> Classifier:
        """`classify`, with the learned rules deciding before the shipped ones where they apply."""
        return with_learned_rules(classify, self.rules)

    # --- outcomes ----------------------------------------------------------------------------------------
    def rerun_ended(self, decisions: DecisionStore, record: DecisionRecord, rerun: Run, succeeded: bool,
                    now: datetime) -> None:
        """Record on `record` how its rerun ended; confirm or refute the learned rule behind it. Never raises
        for the rules' table: the outcome on the record is what must not be lost."""
        if succeeded:
            outcomes.rerun_succeeded(record, now)
        else:
            failure_key = outcomes.rerun_failure_key(record, rerun)
            outcomes.rerun_failed(record, failure_key, now)
            try:
                outcomes.judge(record, decisions.get(failure_key), now)
            except AgentError as exc:  # the next tick judges it
                log.warning("outcome not judged yet: %s", exc, extra={"key": record.key})
        self._teach(record, now)

    def judge_awaiting(self, decisions: DecisionStore, now: datetime) -> list[str]:
        """Settle the verdicts that waited for the decision on a rerun's failure; the keys settled."""
        settled = []
        for record in decisions.awaiting_verdicts():
            if outcomes.judge(record, decisions.get(record.rerun_failure_key or ""), now):
                self._teach(record, now)
                decisions.save(record)
                settled.append(record.key)
        return settled

    def _teach(self, record: DecisionRecord, now: datetime) -> None:
        if record.outcome_verdict not in ("confirmed", "refuted") or not record.fingerprint:
            return
        decided_by_rule = (record.rule_id or "").startswith(LEARNED_PREFIX)

        def change(rule: LearnedRule | None) -> LearnedRule | None:
            if rule is None:
                return None
            if record.outcome_verdict == "refuted":
                return refute_by_outcome(rule, record) if decided_by_rule else rule
            if decided_by_rule or (record.is_retry and rule.action in RETRY_ACTIONS):
                return confirm_by_outcome(rule, record, now)
            return rule

        try:
            self.rules.update(record.fingerprint, change)
        except AgentError as exc:
            log.warning("learned rule not updated from the outcome: %s", exc, extra={"key": record.key})

    # --- feedback ----------------------------------------------------------------------------------------
    def answer(self, record: DecisionRecord, feedback: Feedback) -> tuple[bool, LearnedRule | None, str]:
        """Store a person's answer and learn from it: (new or changed, the rule it made or confirmed, message)."""
        changed = self.feedback.put(feedback)
        rule, message = learn(feedback, record, self.rules)
        return changed, rule, message

    def check_link(self, decision_key: str, expires: str | None, sig: str | None, now: datetime) -> LinkCheck:
        return check_link(self.signing_key() if sig and expires else None, decision_key, expires, sig, now)
