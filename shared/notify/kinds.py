"""Which email a decision deserves, and the id that makes sending it idempotent."""

from __future__ import annotations

from enum import Enum

from shared.decision import DecisionRecord
from shared.taxonomy import Action


class NotificationKind(str, Enum):
    """The emails the agent writes; each has its own templates (templates/<value>.html.j2 / .txt.j2)."""

    DIAGNOSIS = "diagnosis"  # SEND_EMAIL: a human has to fix the code, the data or a permission
    ESCALATION = "escalation"  # ESCALATE: the retry budget is spent (or the failure is critical)
    RETRY = "retry"  # RETRY / RETRY_WITH_NEW_PARAMS: what the agent started, and what it changed
    OBSERVE = "observe"  # observe mode: what the agent would have done
    OUTCOME = "outcome"  # a rerun on a resized cluster ended: which size worked, and whether it was reverted


_BY_ACTION: dict[Action, NotificationKind] = {
    Action.SEND_EMAIL: NotificationKind.DIAGNOSIS,
    Action.ESCALATE: NotificationKind.ESCALATION,
    Action.RETRY: NotificationKind.RETRY,
    Action.RETRY_WITH_NEW_PARAMS: NotificationKind.RETRY,
}


def kind_for(record: DecisionRecord) -> NotificationKind | None:
    """The email `record` deserves: None for IGNORE (or no decision yet), OBSERVE for anything in observe mode."""
    kind = _BY_ACTION.get(record.action) if record.action is not None else None
    if kind is None:
        return None
    return NotificationKind.OBSERVE if record.mode == "observe" else kind


def outcome_kind(record: DecisionRecord) -> NotificationKind | None:
    """OUTCOME once the rerun of a resize has succeeded; None otherwise.

    Sent by the timer when it sees the rerun end, on top of the decision's own email (which kind_for names).
    A rerun that failed again gets no email of its own: the chain's next decision (a larger size, or the
    escalation) is announced anyway, and two emails for one failure is the noise this agent should not make.
    """
    if record.resize is None or record.mode != "act" or record.outcome != "succeeded":
        return None
    return NotificationKind.OUTCOME


def acted_kind(record: DecisionRecord) -> NotificationKind | None:
    """The kind the action maps to, ignoring the mode (an observe email is addressed like the real one)."""
    return _BY_ACTION.get(record.action) if record.action is not None else None


def notification_id(record: DecisionRecord, kind: NotificationKind) -> str:
    """One notification per (decision, kind); an escalation is keyed on its chain, so a chain escalates once."""
    if record.action is Action.ESCALATE:
        return f"{record.chain_id}:{kind.value}"
    return f"{record.key}:{kind.value}"
