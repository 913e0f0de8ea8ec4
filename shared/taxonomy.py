"""The failure categories and actions every part of the agent speaks in, read from one table
(shared/categories.toml: description, first action, LLM override bar per category).

`python -m shared.taxonomy` prints the table as Markdown (docs/categories.md).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

TABLE = Path(__file__).with_name("categories.toml")


class Category(str, Enum):
    """What kind of failure a run had, by root cause (see docs/categories.md)."""

    TIMEOUT = "timeout"
    RESOURCE = "resource"
    PERMISSION = "permission"
    CODE = "code"
    DATA = "data"
    NETWORK = "network"
    INFRASTRUCTURE = "infrastructure"
    CONCURRENCY = "concurrency"
    THROTTLING = "throttling"
    QUOTA = "quota"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


class Action(str, Enum):
    """What the agent does about a failed run."""

    RETRY = "RETRY"
    RETRY_WITH_NEW_PARAMS = "RETRY_WITH_NEW_PARAMS"
    SEND_EMAIL = "SEND_EMAIL"
    ESCALATE = "ESCALATE"
    IGNORE = "IGNORE"


RERUNS: frozenset[Action] = frozenset({Action.RETRY, Action.RETRY_WITH_NEW_PARAMS})


@dataclass(frozen=True)
class CategoryInfo:
    """One row of the category table."""

    category: Category
    first_action: Action
    description: str
    prompt: str  # the short form the LLM's system prompt uses
    bar: float | None  # the LLM confidence needed to override into it; None: never
    never_retry: bool
    outside_job: bool = False  # transient, cause outside the job: incidents hold its reruns


def load_table(path: Path = TABLE) -> tuple[CategoryInfo, ...]:
    """The category table, checked: every Category once, in the enum's order; raises ValueError naming a problem."""
    rows = tomllib.loads(path.read_text(encoding="utf-8")).get("category", [])
    table = []
    for row in rows:
        unknown = set(row) - {"name", "first_action", "description", "prompt", "bar", "never_retry", "outside_job"}
        if unknown:
            raise ValueError(f"{path.name}: {row.get('name')}: unknown keys {sorted(unknown)}")
        bar = row.get("bar")
        if bar is not None and not 0 < float(bar) <= 1:
            raise ValueError(f"{path.name}: {row['name']}: bar {bar} is not in (0, 1]")
        table.append(CategoryInfo(
            Category(row["name"]), Action(row["first_action"]), str(row["description"]).strip(),
            str(row["prompt"]).strip(), None if bar is None else float(bar), bool(row.get("never_retry", False)),
            bool(row.get("outside_job", False))))
    if [r.category for r in table] != list(Category):
        raise ValueError(f"{path.name}: every category exactly once, in the order of taxonomy.Category")
    for r in table:
        if r.never_retry and r.first_action in RERUNS:
            raise ValueError(f"{path.name}: {r.category.value} is never_retry but its first action reruns")
        if r.bar is not None and r.first_action in RERUNS and any(
                o.bar is not None and o.first_action not in RERUNS and o.bar >= r.bar for o in table):
            raise ValueError(f"{path.name}: {r.category.value} starts a rerun, so its bar must be above every "
                             "email-only category's bar")
    return tuple(table)


CATEGORIES: tuple[CategoryInfo, ...] = load_table()
INFO: dict[Category, CategoryInfo] = {r.category: r for r in CATEGORIES}

# The first-attempt action for each category; the decision step may still change it (budget, guard rails).
FIRST_ACTION: dict[Category, Action] = {r.category: r.first_action for r in CATEGORIES}

# Categories a retry can never fix: retrying them burns clusters (the "harmful" count in `make eval`).
NEVER_RETRY: frozenset[Category] = frozenset(r.category for r in CATEGORIES if r.never_retry)

# Transient causes outside the job: during an incident of one of these, reruns are held (shared/incidents).
OUTSIDE_JOB: frozenset[Category] = frozenset(r.category for r in CATEGORIES if r.outside_job)

# The LLM confidence needed to move a decision into a category (at least LLM_CONFIDENCE_THRESHOLD).
OVERRIDE_BAR: dict[Category, float | None] = {r.category: r.bar for r in CATEGORIES}


def prompt_lines() -> str:
    """The table as the LLM's system prompt lists it: one line per category."""
    return "; ".join(f"{r.category.value} ({r.prompt})" for r in CATEGORIES) + "."


def markdown() -> str:
    """The table as docs/categories.md."""
    lines = [
        "# Failure categories",
        "",
        "Generated from `shared/categories.toml` by `python -m shared.taxonomy`; do not edit by hand.",
        "The *LLM bar* is the confidence an LLM answer needs to move an unsure decision into the category (never",
        "below `LLM_CONFIDENCE_THRESHOLD`); a category that starts a rerun has a higher bar than one that only",
        "changes the email; \"never\" means the model can never choose it.",
        "",
        "| category | first action | LLM bar | a rerun can fix it | what it means |",
        "|---|---|---|---|---|",
    ]
    for r in CATEGORIES:
        bar = "never" if r.bar is None else f"{r.bar:.2f}"
        fixable = "no" if r.never_retry else ("yes" if r.first_action in RERUNS else "-")
        lines.append(f"| {r.category.value} | {r.first_action.value} | {bar} | {fixable} | {r.description} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
