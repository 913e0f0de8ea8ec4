"""Which decisions carry a verified label, and what it is.

- Feedback: a person said the decision was right (its category stands), or wrong and named the right
  category (that one). Wrong without a category teaches nothing and is left out; people who disagree about
  one decision cancel it out.
- Outcome: a rerun the agent started that succeeded confirms its category (the learning loop's verdict
  "confirmed"). A refuted decision (failed again the same way) does not say what was right: left out.
Feedback wins over an outcome. One example per fingerprint (the newest), so one noisy job cannot dominate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from shared.decision import DecisionRecord
from shared.report.figures import Verdict
from shared.taxonomy import Category


@dataclass(frozen=True)
class Labeled:
    """A decision and its verified category."""

    record: DecisionRecord
    category: Category
    source: Literal["feedback", "outcome"]


def verified(records: Iterable[DecisionRecord], verdicts: Iterable[Verdict]) -> list[Labeled]:
    """The decisions with a verified label, one per fingerprint, newest first."""
    said: dict[str, dict[str, Verdict]] = defaultdict(dict)
    for verdict in verdicts:
        said[verdict.decision_key][verdict.person or ""] = verdict  # each person's latest word
    labeled: list[Labeled] = []
    for record in records:
        label = _from_feedback(record, list(said.get(record.key, {}).values()))
        if label is None and record.outcome_verdict == "confirmed":
            label = Labeled(record, record.category, "outcome")
        if label is not None:
            labeled.append(label)
    newest: dict[str, Labeled] = {}
    for item in sorted(labeled, key=lambda x: x.record.received_at, reverse=True):
        newest.setdefault(item.record.fingerprint or item.record.key, item)
    return list(newest.values())


def _from_feedback(record: DecisionRecord, verdicts: list[Verdict]) -> Labeled | None:
    categories = set()
    for verdict in verdicts:
        if verdict.correct:
            categories.add(record.category.value)
        elif verdict.category:
            categories.add(verdict.category)
    if len(categories) != 1:
        return None  # nobody said, or people disagree
    try:
        return Labeled(record, Category(categories.pop()), "feedback")
    except ValueError:
        return None
