"""From a classification to an action: the retry budget and the guard rails, as one pure function.

The classifier proposes a first-attempt action; this module decides what actually happens given how many
attempts the chain has had, whether it was escalated already, what the job's tags allow, whether the
failed task's compute can be resized at all, and whether the agent was sure.

The unsure policy: a decision whose confidence stayed below LLM_CONFIDENCE_THRESHOLD (no LLM, the LLM
failed, was over budget, or its answer did not clear its bar) never IGNOREs, never reruns a category a
rerun cannot fix, spends at most one rerun of its chain, and its reason says that the agent was unsure and
why (the email shows the reason). Every verdict carries a typed ReasonCode beside its prose.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

from shared.taxonomy import NEVER_RETRY, RERUNS, Action, Category

UNSURE_MAX_RERUNS = 1  # reruns an unsure chain may spend


class ReasonCode(str, Enum):
    """Why a decision came out as it did, for reports that count reasons without matching prose."""

    RULES_SURE = "rules_sure"  # the rules were sure; their category's first action stands
    LLM_AGREED = "llm_agreed"  # the rules were unsure; the LLM confirmed their category above its bar
    LLM_OVERRIDE = "llm_override"  # the LLM moved the decision to another category, above that category's bar
    BELOW_BAR = "below_bar"  # the rules were unsure and no LLM is configured (or it was not asked)
    LLM_REFUSED = "llm_refused"  # the LLM answered, but the guard rails refused its change
    LLM_FAILED = "llm_failed"  # the LLM call failed (timeout, outage, malformed answer ...)
    LLM_BUDGET_SPENT = "llm_budget_spent"  # the LLM's daily budget was spent
    NO_RULE = "no_rule"  # no rule recognised the failure
    AGENT_OFF = "agent_off"  # the job's tag turns the agent off
    BREAKING_CHANGE = "breaking_change"  # Databricks reruns these itself
    SETTINGS_UNREADABLE = "settings_unreadable"  # jobs/get failed: nothing is rerun
    BUDGET_SPENT = "budget_spent"  # the chain's retry budget is spent: escalate
    ALREADY_ESCALATED = "already_escalated"  # spent and escalated before
    NO_RESIZE = "no_resize"  # a resize was needed but is impossible
    UNSURE_RERUN_SPENT = "unsure_rerun_spent"  # unsure, and the chain had its one rerun already
    UNSURE_NO_RERUN = "unsure_no_rerun"  # unsure about a category a rerun cannot fix: email only
    UNSURE_NOT_IGNORED = "unsure_not_ignored"  # unsure about a cancellation: email, never IGNORE


# How an unsure decision got no help, from the LLM step's outcome (Analysis.llm_outcome).
_UNSURE_CODES = {None: ReasonCode.BELOW_BAR, "not_asked": ReasonCode.BELOW_BAR, "refused": ReasonCode.LLM_REFUSED,
                 "failed": ReasonCode.LLM_FAILED, "budget_spent": ReasonCode.LLM_BUDGET_SPENT}
_UNSURE_WHY = {ReasonCode.BELOW_BAR: "no LLM was consulted", ReasonCode.LLM_REFUSED: "the LLM's answer did not clear "
               "its bar", ReasonCode.LLM_FAILED: "the LLM could not be consulted",
               ReasonCode.LLM_BUDGET_SPENT: "the LLM's daily budget is spent"}

# Job tags that steer the agent per job (read from jobs/get settings.tags).
TAG_ENABLED = "ai_agent"  # "off" turns the agent off for the job; "observe" decides and notifies only
TAG_MAX_RETRIES = "ai_agent_max_retries"  # lowers (never raises) the retry budget for the job
TAG_NOTIFY = "ai_agent_notify"  # comma-separated recipients (read by the notifier)


@dataclass(frozen=True)
class JobControls:
    """What a job's tags say about how the agent may treat it."""

    enabled: bool = True
    mode: Literal["act", "observe"] | None = None
    max_retries: int | None = None


def job_controls(tags: dict[str, str] | None, default_max_retries: int) -> JobControls:
    """Read the agent's job tags. Unknown or malformed values are ignored (the safer default stays)."""
    tags = {k.lower(): (v or "").strip().lower() for k, v in (tags or {}).items()}
    switch = tags.get(TAG_ENABLED, "")
    budget = None
    raw = tags.get(TAG_MAX_RETRIES, "")
    if raw.isdigit():
        budget = min(int(raw), default_max_retries)
    return JobControls(
        enabled=switch not in ("off", "false", "disabled", "0"),
        mode="observe" if switch == "observe" else None,
        max_retries=budget,
    )


@dataclass(frozen=True)
class DecisionInput:
    """Everything the decision depends on, already gathered."""

    category: Category
    proposed: Action
    attempt: int  # 1 for the first failure of a chain
    max_retries: int  # reruns the agent may start for one chain
    already_escalated: bool = False
    agent_enabled: bool = True
    settings_unreadable: bool = False  # jobs/get failed: the job's tags (ai_agent=off ...) are unknown
    termination_code: str | None = None
    resize_blocker: str | None = None  # why a resize is impossible, when it is
    confidence: float = 1.0  # of the category decided on (the rules', or the LLM's when it overrode)
    threshold: float = 0.0  # LLM_CONFIDENCE_THRESHOLD: below it the decision is unsure
    llm_outcome: str | None = None  # Analysis.llm_outcome: agreed | override | refused | failed | budget_spent ...

    @property
    def unsure(self) -> bool:
        return self.category is not Category.UNKNOWN and self.confidence < self.threshold


@dataclass(frozen=True)
class Verdict:
    action: Action
    reason: str
    code: ReasonCode = ReasonCode.RULES_SURE


def decide(facts: DecisionInput) -> Verdict:
    """Apply the guard rails in order; the first that applies decides."""
    if not facts.agent_enabled:
        return Verdict(Action.IGNORE, f"the job's tag {TAG_ENABLED}=off turns the agent off for it",
                       ReasonCode.AGENT_OFF)
    if facts.termination_code == "BREAKING_CHANGE":
        return Verdict(Action.IGNORE, "Databricks reruns BREAKING_CHANGE failures with a mitigation itself",
                       ReasonCode.BREAKING_CHANGE)
    if facts.unsure:
        unsure = _unsure(facts)
        if unsure is not None:
            return unsure
    sure = _sure_code(facts)
    if facts.proposed is Action.IGNORE:
        return Verdict(Action.IGNORE, f"{facts.category.value}: nothing to fix", sure)
    if facts.proposed in (Action.SEND_EMAIL, Action.ESCALATE):
        if facts.category is Category.UNKNOWN:
            return Verdict(facts.proposed, "unknown failure needs a human: no rule recognised the failure",
                           ReasonCode.NO_RULE)
        return Verdict(facts.proposed, f"{facts.category.value} failure needs a human: a retry cannot fix it", sure)

    if facts.settings_unreadable:
        return Verdict(Action.SEND_EMAIL, f"{facts.category.value} failure, but the job's settings could not be read "
                       "(its tags may turn the agent off), so nothing was rerun", ReasonCode.SETTINGS_UNREADABLE)
    retries_so_far = facts.attempt - 1
    if retries_so_far >= facts.max_retries:
        if facts.already_escalated:
            return Verdict(Action.IGNORE, "retry budget spent and this chain was escalated already",
                           ReasonCode.ALREADY_ESCALATED)
        return Verdict(
            Action.ESCALATE,
            f"retry budget spent: {retries_so_far} of {facts.max_retries} reruns used and it still fails "
            f"({facts.category.value})", ReasonCode.BUDGET_SPENT,
        )
    if facts.proposed is Action.RETRY_WITH_NEW_PARAMS and facts.resize_blocker:
        return Verdict(Action.SEND_EMAIL, f"{facts.category.value} failure, but no resize: {facts.resize_blocker}",
                       ReasonCode.NO_RESIZE)
    verb = "rerun on a larger cluster" if facts.proposed is Action.RETRY_WITH_NEW_PARAMS else "rerun"
    reason = f"{facts.category.value} failure is worth a {verb} (rerun {retries_so_far + 1} of {facts.max_retries})"
    if facts.unsure:
        reason = f"{_unsure_prefix(facts)}; {reason}, at most {UNSURE_MAX_RERUNS} while unsure"
        return Verdict(facts.proposed, reason, _UNSURE_CODES.get(facts.llm_outcome, ReasonCode.BELOW_BAR))
    return Verdict(facts.proposed, reason, sure)


def first_attempt_action(category: Category, proposed: Action, confidence: float, threshold: float) -> Action:
    """What the agent does on a chain's first failure without an LLM: the proposed action under the unsure
    policy (so `classify` and `eval` report what the agent would do, never an unsure IGNORE)."""
    return decide(DecisionInput(category=category, proposed=proposed, attempt=1, max_retries=1,
                                confidence=confidence, threshold=threshold)).action


def _sure_code(facts: DecisionInput) -> ReasonCode:
    if facts.llm_outcome == "override":
        return ReasonCode.LLM_OVERRIDE
    if facts.llm_outcome == "agreed":
        return ReasonCode.LLM_AGREED
    return ReasonCode.RULES_SURE


def _unsure_prefix(facts: DecisionInput) -> str:
    code = _UNSURE_CODES.get(facts.llm_outcome, ReasonCode.BELOW_BAR)
    return (f"Unsure: the rules' confidence in {facts.category.value} is {facts.confidence:.2f}, below "
            f"{facts.threshold:.2f}, and {_UNSURE_WHY[code]}")


def _unsure(facts: DecisionInput) -> Verdict | None:
    """The unsure policy's verdict, or None when the normal rules may go on (a rerun it still allows)."""
    prefix = _unsure_prefix(facts)
    if facts.proposed is Action.IGNORE:
        return Verdict(Action.SEND_EMAIL, f"{prefix}; a failure the agent is unsure about is never ignored",
                       ReasonCode.UNSURE_NOT_IGNORED)
    if facts.proposed in RERUNS and facts.category in NEVER_RETRY:  # cannot come from the table; kept as a rail
        return Verdict(Action.SEND_EMAIL, f"{prefix}; a rerun cannot fix {facts.category.value}, so nothing was "
                       "rerun", ReasonCode.UNSURE_NO_RERUN)
    if facts.proposed in (Action.SEND_EMAIL, Action.ESCALATE):
        return Verdict(facts.proposed, f"{prefix}; a person should check: {facts.category.value} failures need a "
                       "human", _UNSURE_CODES.get(facts.llm_outcome, ReasonCode.BELOW_BAR))
    if facts.attempt - 1 >= UNSURE_MAX_RERUNS and facts.proposed in RERUNS:
        return Verdict(Action.SEND_EMAIL, f"{prefix}; the chain had its {UNSURE_MAX_RERUNS} rerun already, so a "
                       "person should look", ReasonCode.UNSURE_RERUN_SPENT)
    return None
