"""A learned rule exports as a [[rule]] entry the shipped tables accept, and the CLI lists, disables, exports."""

import argparse
import json
import tomllib
from datetime import datetime, timezone

from shared.classify import FailureSignals
from shared.classify.classifier import classify_with
from shared.classify.rules import RuleIndex, _rule_from, validate
from shared.commands import rules as command
from shared.learning.export import pattern_for, to_toml
from shared.learning.learned_rules import MemoryLearnedRuleStore
from shared.learning.model import LearnedRule
from shared.taxonomy import Action, Category

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)
LINE = "java.net.ConnectException: Connection refused (Connection refused) to host 10.0.0.4:5432"


def learned(**changes) -> LearnedRule:
    values = dict(fingerprint="0123456789abcdef", category=Category.CODE, action=Action.SEND_EMAIL,
                  decision_key="ws:100:0", corrected_by="ann@contoso.example", corrected_at=NOW,
                  original_category=Category.NETWORK, evidence=LINE, comment='the "legacy" service is retired')
    values.update(changes)
    return LearnedRule(**values)


def test_the_exported_entry_is_valid_toml_that_the_rule_loader_accepts():
    entry = tomllib.loads(to_toml(learned()))["rule"][0]
    rule = _rule_from(entry, "learned.toml")
    assert validate([rule]) == []
    assert (rule.id, rule.category, rule.kind) == ("learned-0123456789abcdef", Category.CODE, "message")
    assert "ws:100:0" in rule.comment and "ann@contoso.example" in rule.comment


def test_the_exported_pattern_decides_the_same_failure_with_other_values():
    rule = _rule_from(tomllib.loads(to_toml(learned()))["rule"][0], "learned.toml")
    other = FailureSignals(LINE.replace("10.0.0.4:5432", "10.9.8.7:6543"), result_state="FAILED")
    result = classify_with(RuleIndex((rule,)), other)
    assert result.category is Category.CODE and result.rule_id == rule.id


def test_a_pattern_has_only_bounded_gaps():
    assert ".*" not in pattern_for("Table 'a.b.c' has 12 rows at /mnt/x/y/z")


def run(store, *argv):
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return command.run(parser.parse_args(argv), store=store)


def stored(*rules):
    store = MemoryLearnedRuleStore()
    for rule in rules:
        store.update(rule.fingerprint, lambda _, rule=rule: rule)
    return store


def test_rules_list_shows_who_taught_what_on_which_decision(capsys):
    assert run(stored(learned()), "list") == 0
    out = capsys.readouterr().out
    assert "learned-0123456789abcdef" in out and "code → SEND_EMAIL" in out and "ws:100:0" in out


def test_rules_list_json_is_one_object_per_rule(capsys):
    run(stored(learned(), learned(fingerprint="fedcba9876543210")), "list", "--json")
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["learned-0123456789abcdef", "learned-fedcba9876543210"]


def test_rules_disable_keeps_the_rule_with_who_and_why(capsys):
    store = stored(learned())
    assert run(store, "disable", "learned-0123456789abcdef", "--by", "bob", "--reason", "too broad") == 0
    rule = store.get("0123456789abcdef")
    assert rule.status == "disabled" and rule.status_note == "disabled by bob: too broad"


def test_rules_export_prints_the_entry_and_an_unknown_rule_is_an_error(capsys):
    store = stored(learned())
    assert run(store, "export", "0123456789abcdef") == 0
    assert tomllib.loads(capsys.readouterr().out)["rule"][0]["id"] == "learned-0123456789abcdef"
    assert run(store, "export", "learned-nope") == 1
    assert "no learned rule" in capsys.readouterr().err
