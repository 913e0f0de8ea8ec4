"""The rule tables: every shipped file loads and validates, and validation catches what would break matching."""

import re

import pytest

from shared.classify.rules import (
    KINDS, RULES_DIR, SEARCH_KINDS, Rule, RuleError, RuleIndex, load_rules, validate,
)
from shared.taxonomy import Category

SHIPPED = load_rules()


def rule(**overrides):
    fields = dict(id="r-1", category=Category.CODE, kind="message", pattern="syntax error", confidence=0.8,
                  comment="why", examples=(), source="test.toml")
    fields.update(overrides)
    return Rule(**fields)


def test_every_rule_file_loads_and_validates():
    assert len(SHIPPED) > 100
    assert {r.source for r in SHIPPED} == {p.name for p in RULES_DIR.glob("*.toml")}


def test_rule_ids_are_unique():
    ids = [r.id for r in SHIPPED]
    assert len(ids) == len(set(ids))


def test_every_rule_names_a_known_category_and_kind():
    for r in SHIPPED:
        assert r.category in set(Category) - {Category.UNKNOWN}, r.id
        assert r.kind in KINDS, r.id


def test_every_pattern_compiles_without_named_groups():
    for r in SHIPPED:
        assert not re.compile(r.pattern).groupindex, r.id


def test_every_rule_says_why():
    assert all(r.comment.strip() for r in SHIPPED)


def test_every_shipped_example_matches_its_rule():
    assert validate([r for r in SHIPPED if r.examples]) == []


def test_every_category_has_rules():
    assert {r.category for r in SHIPPED} == set(Category) - {Category.UNKNOWN}


def test_validation_reports_a_duplicate_id():
    assert any("duplicate id" in p for p in validate([rule(), rule()]))


def test_validation_reports_an_unknown_kind():
    assert any("unknown kind" in p for p in validate([rule(kind="vibes")]))


def test_validation_reports_a_pattern_that_does_not_compile():
    assert any("does not compile" in p for p in validate([rule(pattern="(unclosed")]))


def test_validation_rejects_an_unbounded_repeat_in_a_search_pattern():
    assert any("unbounded repeat" in p for p in validate([rule(pattern="connection.*refused")]))


def test_validation_accepts_a_bounded_gap():
    assert validate([rule(pattern="connection.{0,80}refused")]) == []


def test_validation_reports_an_example_the_rule_does_not_match():
    assert any("does not match its example" in p for p in validate([rule(examples=("all good",))]))


def test_validation_rejects_a_rule_deciding_unknown():
    assert any("cannot decide 'unknown'" in p for p in validate([rule(category=Category.UNKNOWN)]))


def test_validation_rejects_a_context_flag_on_a_token_rule():
    assert any("only search rules" in p for p in validate([rule(kind="exception", pattern="X", anywhere=True)]))


def test_loading_a_broken_file_names_the_file_and_the_problem(tmp_path):
    (tmp_path / "bad.toml").write_text('[[rule]]\nid = "x"\ncategory = "nonsense"\nkind = "message"\n'
                                       'pattern = "a"\nconfidence = 0.5\ncomment = "c"\n')
    with pytest.raises(RuleError, match=r"bad\.toml rule #1 \(x\)"):
        load_rules(tmp_path)


def test_a_new_rule_is_a_data_change(tmp_path):
    (tmp_path / "extra.toml").write_text('[[rule]]\nid = "x-1"\ncategory = "quota"\nkind = "message"\n'
                                         'pattern = "flux capacitor depleted"\nconfidence = 0.9\ncomment = "c"\n')
    index = RuleIndex(load_rules(tmp_path))
    assert [r.id for r, _ in index.search("Flux capacitor depleted", "flux capacitor depleted")] == ["x-1"]


def test_token_lookup_prefers_the_most_confident_rule():
    index = RuleIndex((rule(id="weak", kind="error_class", pattern="[A-Z_]{1,40}", confidence=0.4),
                       rule(id="strong", kind="error_class", pattern="DIVIDE_BY_ZERO", confidence=0.9,
                            category=Category.DATA)))
    assert index.match("error_class", "DIVIDE_BY_ZERO").id == "strong"


def test_search_rules_match_case_insensitively_and_cloud_codes_exactly():
    message = rule(id="m", pattern="Connection Refused")
    code = rule(id="c", kind="cloud_code", pattern="SlowDown")
    index = RuleIndex((message, code))
    text = "connection refused, SlowDown, slowdown"
    found = {r.id: offsets for r, offsets in index.search(text, text.lower())}
    assert found["m"] == [0]
    assert found["c"] == [text.index("SlowDown")]


def test_search_kinds_are_the_text_kinds():
    assert SEARCH_KINDS == {"cloud_code", "message", "wording"}
