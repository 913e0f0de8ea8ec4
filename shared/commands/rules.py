"""`python -m shared rules list|disable|export`: the rules the agent learned from people's corrections."""

from __future__ import annotations

import argparse
import json
import sys

from shared.learning.learned_rules import LearnedRuleStore
from shared.learning.model import LearnedRule


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="action", required=True)
    listing = sub.add_parser("list", help="every learned rule: what it decides, who taught it, its standing")
    listing.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    disable = sub.add_parser("disable", help="stop a learned rule from deciding (kept, for the record)")
    disable.add_argument("rule", help="the rule id (learned-<fingerprint>) or the fingerprint")
    disable.add_argument("--by", required=True, help="who disables it")
    disable.add_argument("--reason", default="", help="why (kept with the rule)")
    export = sub.add_parser("export", help="the rule as a [[rule]] TOML entry for shared/classify/rules/")
    export.add_argument("rule", help="the rule id (learned-<fingerprint>) or the fingerprint")


def run(args: argparse.Namespace, store: LearnedRuleStore | None = None) -> int:
    store = store or _store()
    if args.action == "list":
        rules = store.all()
        if args.json:
            for rule in rules:
                print(json.dumps({"id": rule.rule_id, **rule.model_dump(mode="json")}, ensure_ascii=False))
        else:
            print(format_table(rules))
        return 0
    rule = store.find(args.rule)
    if rule is None:
        print(f"no learned rule {args.rule!r}; `python -m shared rules list` shows them", file=sys.stderr)
        return 1
    if args.action == "disable":
        return _disable(store, rule, args.by, args.reason)
    from shared.learning.export import ExportError, to_toml

    try:
        print(to_toml(rule), end="")
    except ExportError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


def _disable(store: LearnedRuleStore, rule: LearnedRule, by: str, reason: str) -> int:
    def change(current: LearnedRule | None) -> LearnedRule | None:
        if current is None:
            return None
        current.status = "disabled"
        current.status_note = f"disabled by {by}" + (f": {reason}" if reason else "")
        return current

    store.update(rule.fingerprint, change)
    print(f"{rule.rule_id} disabled; the shipped rules decide its failures again")
    return 0


def format_table(rules: list[LearnedRule]) -> str:
    """One line per learned rule, for people."""
    rows = [("id", "status", "decides", "was", "taught by", "when (UTC)", "on decision", "confirmations")]
    for r in rules:
        rows.append((r.rule_id, r.status, f"{r.category.value} → {r.action.value}", r.original_category.value,
                     r.corrected_by[:30], r.corrected_at.strftime("%Y-%m-%d %H:%M"), r.decision_key,
                     str(r.independent_confirmations())))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines) if rules else lines[0] + "\n(no learned rules yet)"


def _store() -> LearnedRuleStore:
    from shared.learning.learned_rules import TableLearnedRuleStore
    from shared.settings import load_settings
    from shared.wiring import table

    settings = load_settings()
    return TableLearnedRuleStore(table(settings, settings.learned_rules_table))
