"""What the learning loop keeps: a person's feedback on a decision, and a rule learned from a correction."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from shared.taxonomy import NEVER_RETRY, Action, Category

RETRY_ACTIONS = frozenset({Action.RETRY, Action.RETRY_WITH_NEW_PARAMS})
LEARNED_PREFIX = "learned-"  # rule ids of learned rules: learned-<fingerprint>

RuleStatus = Literal["active", "awaiting_confirmation", "disabled", "refuted"]


class Feedback(BaseModel):
    """One person's verdict on one decision (one row per decision and person: a second answer replaces the first)."""

    decision_key: str
    correct: bool
    category: Category | None = Field(default=None, description="The right category, when the decision was wrong.")
    action: Action | None = Field(default=None, description="The right action, when the decision was wrong.")
    comment: str = ""
    by: str = Field(description="Who answered: a name or address (self-declared on the email link).")
    via: Literal["api", "link"]
    at: datetime
    principal: str | None = Field(
        default=None, description="Who answered, as the platform verified it (App Service Authentication), if it did.")


class Confirmation(BaseModel):
    """Someone or something that stands behind a learned rule."""

    kind: Literal["feedback", "outcome"]
    who: str = Field(description="The person, or the decision whose rerun succeeded.")
    decision_key: str
    at: datetime
    via: Literal["api", "link"] = "api"
    principal: str | None = None

    @property
    def identity(self) -> str:
        """Who this confirmation counts as. A typed name proves nothing: answers through one decision's link count
        as one confirmation, and answers with the function key as one, however many names they give; only a
        principal the platform verified tells API callers apart."""
        if self.kind == "outcome":
            return f"outcome:{self.decision_key}"
        if self.via == "link":
            return f"link:{self.decision_key}"
        if self.principal:
            return "principal:" + " ".join(self.principal.lower().split())
        return "function-key"


class LearnedRule(BaseModel):
    """A correction on a fingerprint, as data: it decides the next failure with that fingerprint."""

    fingerprint: str
    category: Category
    action: Action
    status: RuleStatus = "active"
    decision_key: str = Field(description="The decision the correction was made on.")
    corrected_by: str
    corrected_at: datetime
    comment: str = ""
    original_category: Category
    original_action: Action | None = None
    evidence: str = Field(default="", description="The line that decided the corrected decision (for export).")
    confirmations: list[Confirmation] = Field(default_factory=list)
    refuted_by: list[str] = Field(default_factory=list, description="Decisions of this rule whose rerun failed the same way.")
    status_note: str = ""

    @property
    def rule_id(self) -> str:
        return LEARNED_PREFIX + self.fingerprint

    @property
    def turns_into_retry(self) -> bool:
        """True when it would rerun a failure the shipped rules say a rerun cannot fix."""
        return self.action in RETRY_ACTIONS and (
            self.original_category in NEVER_RETRY or self.category in NEVER_RETRY)

    def independent_confirmations(self) -> int:
        """Distinct people (API) or emails' links, plus successful reruns, standing behind the rule."""
        return len({c.identity for c in self.confirmations})
