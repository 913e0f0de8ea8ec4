"""People's feedback on decisions: the body's validation (each problem names its field) and the table.

One row per decision and person, so answering twice (a double click, a changed mind) replaces the answer
instead of counting it twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from shared.table_keys import table_key
from shared.exceptions import BadRequest
from shared.learning.model import RETRY_ACTIONS, Feedback
from shared.redaction import redact
from shared.tables import EntityTable, MemoryEntityTable
from shared.taxonomy import NEVER_RETRY, Action, Category

FIELDS = ("correct", "category", "action", "comment", "by")
MAX_COMMENT = 2000
MAX_BY = 200
ANONYMOUS = "someone with the email link"
_TRUE = {"true", "yes", "right", "1", "on"}
_FALSE = {"false", "no", "wrong", "0", "off"}


class FeedbackError(BadRequest):
    """A feedback body that does not fit: the message names the field (HTTP 400)."""


def parse_feedback(
    body: Mapping[str, Any], *, decision_key: str, via: Literal["api", "link"], now: datetime,
    principal: str | None = None,
) -> Feedback:
    """Validate a JSON object or a submitted form into Feedback; FeedbackError names the first bad field."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise FeedbackError(f"unknown field {unknown[0]!r}; the fields are {', '.join(FIELDS)}", field=unknown[0])
    correct = _boolean(body.get("correct"))
    category = _choice(body.get("category"), Category, "category", exclude={Category.UNKNOWN})
    action = _choice(body.get("action"), Action, "action")
    comment = _text(body.get("comment"), "comment", MAX_COMMENT)
    by = _text(body.get("by"), "by", MAX_BY)
    if not by:
        if via == "api":
            raise FeedbackError("'by' is required: who is answering (a name or an address)", field="by")
        by = ANONYMOUS
    if correct and (category or action):
        raise FeedbackError("'category'/'action' name the right answer: send them with correct=false", field="category")
    if category in NEVER_RETRY and action in RETRY_ACTIONS:
        raise FeedbackError(f"'action' {action.value} contradicts category {category.value}: a rerun cannot fix "
                            "that kind of failure", field="action")
    return Feedback(decision_key=decision_key, correct=correct, category=category, action=action,
                    comment=redact(comment), by=redact(by), via=via, at=now,
                    principal=_text(principal, "principal", MAX_BY) or None)


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if value is None or value == "":
        raise FeedbackError("'correct' is required: true if the decision was right, false if not", field="correct")
    raise FeedbackError("'correct' must be true or false", field="correct")


def _choice(value: Any, enum: Any, name: str, exclude: frozenset | set = frozenset()) -> Any:
    if value is None or value == "":
        return None
    allowed = [m for m in enum if m not in exclude]
    if isinstance(value, str):
        for member in allowed:
            if value.strip().lower() == member.value.lower():
                return member
    raise FeedbackError(f"'{name}' must be one of {', '.join(m.value for m in allowed)}", field=name)


def _text(value: Any, name: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FeedbackError(f"'{name}' must be text", field=name)
    if len(value) > limit:
        raise FeedbackError(f"'{name}' is longer than {limit} characters", field=name)
    return value.strip()


def person_key(by: str) -> str:
    """The row of one person's answer: case and spacing do not make a second person."""
    return hashlib.sha256(" ".join(by.lower().split()).encode("utf-8")).hexdigest()[:32]


class FeedbackStore:
    """Feedback rows, PartitionKey = decision key, RowKey = the person; over an EntityTable or its memory twin."""

    def __init__(self, table: EntityTable | MemoryEntityTable) -> None:
        self._table = table

    def put(self, feedback: Feedback) -> bool:
        """Store (or replace) this person's answer; True if it is new or changed."""
        pk, rk = table_key(feedback.decision_key), person_key(feedback.by)
        old, _ = self._table.read(pk, rk)
        if old is not None and _same_answer(json.loads(old["value"]), feedback):
            return False
        self._table.upsert({"PartitionKey": pk, "RowKey": rk, "value": feedback.model_dump_json(),
                            "decision_key": feedback.decision_key, "correct": feedback.correct})
        return True

    def for_decision(self, decision_key: str) -> list[Feedback]:
        """Every person's answer on one decision."""
        return [_load(e) for e, _ in self._table.query(table_key(decision_key))]

    def all(self) -> list[Feedback]:
        """Every answer (reports)."""
        return [_load(e) for e, _ in self._table.query()]


def _same_answer(stored: dict[str, Any], feedback: Feedback) -> bool:
    # The same person (by person_key) giving the same answer: when and how they spelled their name do not count.
    stored = {k: v for k, v in stored.items() if k not in ("at", "by")}
    return stored == json.loads(feedback.model_dump_json(exclude={"at", "by"}))



def _load(entity: dict[str, Any]) -> Feedback:
    return Feedback.model_validate_json(entity["value"])


class TableFeedbackStore(FeedbackStore):
    def __init__(self, table_client: Any) -> None:
        super().__init__(EntityTable(table_client, "feedback"))


class MemoryFeedbackStore(FeedbackStore):
    def __init__(self) -> None:
        super().__init__(MemoryEntityTable())
