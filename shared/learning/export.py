"""A learned rule as a TOML entry of the shipped rule tables (shared/classify/rules/*.toml), for review.

The fingerprint is a hash and cannot be shipped; the entry matches the line that decided the corrected
decision instead, with its variable parts (quoted values, numbers, paths) widened into bounded gaps. The
entry is checked the way the shipped tables are (shared.classify.rules.validate): it compiles, it has no
unbounded repeat, and it matches its own example.
"""

from __future__ import annotations

import json
import re

from shared.classify.rules import MAX_GAP, Rule, validate
from shared.learning.model import LearnedRule

CONFIDENCE = 0.85  # a message rule from one line: below the structured signals of the shipped tables
_MAX_CHARS = 140
# Variable parts of an error line, and the bounded gap that stands for each.
_VARIABLE = re.compile(
    r"(?P<quoted>'[^'\n]{0,200}'|\"[^\"\n]{0,200}\"|`[^`\n]{0,200}`)"
    r"|(?P<path>\b[a-z][a-z0-9+.-]{1,20}://\S+|(?:[a-z]:)?(?:[/\\][\w.@$%+=~-]+){2,})"
    r"|(?P<number>\d+)"
    r"|(?P<space>\s+)",
    re.I,
)
_GAPS = {"quoted": "['\"`][^'\"`]{0,%d}['\"`]" % MAX_GAP, "path": r"\S{1,%d}" % MAX_GAP,
         "number": r"\d{1,20}", "space": r"\s{1,5}"}


class ExportError(ValueError):
    """The rule cannot be written as a shipped entry (no evidence line, or the entry does not validate)."""


def pattern_for(line: str) -> str:
    """A bounded regex that matches `line` and lines that differ from it only in values, numbers and paths."""
    text = line.strip().rstrip("…").strip()[:_MAX_CHARS]
    out, position = [], 0
    for match in _VARIABLE.finditer(text):
        out.append(re.escape(text[position:match.start()]))
        out.append(_GAPS[match.lastgroup or "space"])
        position = match.end()
    out.append(re.escape(text[position:]))
    return "".join(out).strip()


def as_rule(rule: LearnedRule) -> Rule:
    if not rule.evidence.strip():
        raise ExportError(f"{rule.rule_id} has no evidence line to match; write its entry by hand")
    comment = (f"Learned from feedback on decision {rule.decision_key} by {rule.corrected_by} on "
               f"{rule.corrected_at:%Y-%m-%d} ({rule.original_category.value} → {rule.category.value})"
               + (f": {rule.comment}" if rule.comment else "") + ". Review the pattern before shipping.")
    return Rule(id=rule.rule_id, category=rule.category, kind="message", pattern=pattern_for(rule.evidence),
                confidence=CONFIDENCE, comment=comment, examples=(rule.evidence.strip().rstrip("…").strip(),),
                source="learned")


def to_toml(rule: LearnedRule) -> str:
    """The `[[rule]]` entry, validated like the shipped ones; ExportError says why it cannot be."""
    entry = as_rule(rule)
    problems = validate([entry])
    if problems:
        raise ExportError(f"{rule.rule_id}: the generated entry does not validate: {'; '.join(problems)}")
    lines = [
        f"# {rule.action.value} was the learned action; the shipped tables decide the category, and the category "
        "its first action (shared/taxonomy.py).",
        "[[rule]]",
        f"id = {_string(entry.id)}",
        f"category = {_string(entry.category.value)}",
        f"kind = {_string(entry.kind)}",
        f"pattern = {_string(entry.pattern)}",
        f"confidence = {entry.confidence}",
        f"comment = {_string(entry.comment)}",
        f"examples = [{_string(entry.examples[0])}]",
    ]
    return "\n".join(lines) + "\n"


def _string(value: str) -> str:
    # A JSON string is a valid TOML basic string (same escapes), so no TOML writer is needed.
    return json.dumps(value, ensure_ascii=False)
