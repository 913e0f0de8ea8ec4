"""From a classification to an action: the retry budget and the guard rails, as one pure function.

The classifier proposes a first-attempt action; this module decides what actually happens given how many
attempts the chain has had, whether it was escalated already, what the job's tags allow and whether the
failed task's compute can be resized at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared.taxonomy import Action, Category

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


@dataclass(frozen=True)
class Verdict:
    action: Action
    reason: str


def decide(facts: DecisionInput) -> Verdict:
    """Apply the guard rails in order; the first that applies decides."""
    if not facts.agent_enabled:
        return Verdict(Action.IGNORE, f"the job's tag {TAG_ENABLED}=off turns the agent off for it")
    if facts.termination_code == "BREAKING_CHANGE":
        return Verdict(Action.IGNORE, "Databricks reruns BREAKING_CHANGE failures with a mitigation itself")
    if facts.proposed is Action.IGNORE:
        return Verdict(Action.IGNORE, f"{facts.category.value}: nothing to fix")
    if facts.proposed in (Action.SEND_EMAIL, Action.ESCALATE):
        why = "no rule recognised the failure" if facts.category is Category.UNKNOWN else "a retry cannot fix it"
        return Verdict(facts.proposed, f"{facts.category.value} failure needs a human: {why}")

    if facts.settings_unreadable:
        return Verdict(Action.SEND_EMAIL, f"{facts.category.value} failure, but the job's settings could not be read "
                       "(its tags may turn the agent off), so nothing was rerun")
    retries_so_far = facts.attempt - 1
    if retries_so_far >= facts.max_retries:
        if facts.already_escalated:
            return Verdict(Action.IGNORE, "retry budget spent and this chain was escalated already")
        return Verdict(
            Action.ESCALATE,
            f"retry budget spent: {retries_so_far} of {facts.max_retries} reruns used and it still fails "
            f"({facts.category.value})",
        )
    if facts.proposed is Action.RETRY_WITH_NEW_PARAMS and facts.resize_blocker:
        return Verdict(Action.SEND_EMAIL, f"{facts.category.value} failure, but no resize: {facts.resize_blocker}")
    verb = "rerun on a larger cluster" if facts.proposed is Action.RETRY_WITH_NEW_PARAMS else "rerun"
    return Verdict(
        facts.proposed,
        f"{facts.category.value} failure is worth a {verb} (rerun {retries_so_far + 1} of {facts.max_retries})",
    )
