"""What the classifier reads (FailureSignals) and what it answers (Classification)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.taxonomy import Action, Category


@dataclass(frozen=True)
class FailureSignals:
    """Everything known about one failed task or run, as read from the Jobs and Clusters APIs."""

    text: str  # all error text joined by newlines: state_message(s), error, error_trace
    result_state: str | None = None  # FAILED | TIMEDOUT | CANCELED | ... (task or run)
    life_cycle_state: str | None = None  # TERMINATED | INTERNAL_ERROR | SKIPPED ...
    termination_code: str | None = None  # status.termination_details.code, e.g. RUN_EXECUTION_ERROR, USER_CANCELED
    termination_type: str | None = None  # SUCCESS | INTERNAL_ERROR | CLIENT_ERROR | CLOUD_FAILURE
    cluster_reason_code: str | None = None  # clusters/get termination_reason.code
    cluster_reason_type: str | None = None  # CLIENT_ERROR | SERVICE_FAULT | CLOUD_FAILURE
    attempt: int = 1  # which attempt of its chain this failure is (some limits mean more when they persist)


@dataclass(frozen=True)
class Classification:
    """The category of a failure, its first-attempt action, and why."""

    category: Category
    action: Action  # FIRST_ACTION[category]
    confidence: float  # 0..1; low when only wording matched or signals conflict
    evidence: tuple[str, ...]  # the line(s) that decided, trimmed (<= ~300 chars each)
    excerpt: str  # <= 2000 chars: error line, root cause, first user frames
    fingerprint: str  # shared.fingerprint of the root cause
    rule_id: str | None  # which rule decided (None for unknown)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (enums as their values)."""
        return {
            "category": self.category.value,
            "action": self.action.value,
            "confidence": round(self.confidence, 3),
            "evidence": list(self.evidence),
            "excerpt": self.excerpt,
            "fingerprint": self.fingerprint,
            "rule_id": self.rule_id,
        }
