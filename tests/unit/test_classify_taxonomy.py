"""The category table is the one source of each category's meaning, first action and LLM bar."""

from pathlib import Path

import pytest

from shared.taxonomy import (
    CATEGORIES,
    FIRST_ACTION,
    NEVER_RETRY,
    OVERRIDE_BAR,
    RERUNS,
    Action,
    Category,
    load_table,
    markdown,
)

ROOT = Path(__file__).resolve().parents[2]


def test_every_category_is_in_the_table_once_and_feeds_the_action_map():
    assert [r.category for r in CATEGORIES] == list(Category)
    assert FIRST_ACTION == {r.category: r.first_action for r in CATEGORIES}
    assert NEVER_RETRY == {Category.PERMISSION, Category.CODE, Category.DATA, Category.QUOTA}
    assert FIRST_ACTION[Category.CANCELLED] is Action.IGNORE and OVERRIDE_BAR[Category.CANCELLED] is None


def test_a_category_that_reruns_has_a_higher_bar_than_every_email_only_one():
    rerun_bars = [r.bar for r in CATEGORIES if r.first_action in RERUNS]
    email_bars = [r.bar for r in CATEGORIES if r.first_action not in RERUNS and r.bar is not None]
    assert min(rerun_bars) > max(email_bars)


def test_the_docs_are_generated_from_the_table():
    assert (ROOT / "docs" / "categories.md").read_text(encoding="utf-8") == markdown(), \
        "run: python -m shared.taxonomy > docs/categories.md"


@pytest.mark.parametrize("change,problem", [
    ('bar = 0.9\ndescription = "x"\nnever_retry = true', "never_retry but its first action reruns"),
    ('bar = 0.5\ndescription = "x"', "must be above every email-only category's bar"),
])
def test_a_broken_table_is_refused_with_the_problem_named(tmp_path, change, problem):
    text = (ROOT / "shared" / "categories.toml").read_text(encoding="utf-8")
    start = text.index('name = "timeout"')
    end = text.index("[[category]]", start)
    broken = text[:start] + 'name = "timeout"\nprompt = "p"\nfirst_action = "RETRY"\n' + change + "\n\n" + text[end:]
    path = tmp_path / "categories.toml"
    path.write_text(broken)
    with pytest.raises(ValueError, match=problem):
        load_table(path)
