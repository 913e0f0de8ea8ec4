"""The storm's exactly-once check finds what it is there to find: a failure decided twice or never, a decision
about no failure, a run repaired more often than decided."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

from localdev.storm_figures import _exactly_once
from shared.taxonomy import Action


def record(run_id: int, repair_count: int, action: Action = Action.RETRY) -> SimpleNamespace:
    return SimpleNamespace(run_id=run_id, repair_count=repair_count, key=f"ws:{run_id}:{repair_count}", action=action)


FAILURES = [(1, 0), (1, 1), (2, 0)]  # run 1 failed, its repair failed; run 2 failed


def test_one_decision_per_failure_and_a_repair_per_retry_is_clean():
    decided, problems = _exactly_once(FAILURES, Counter({1: 2, 2: 1}), [record(1, 0), record(1, 1), record(2, 0)])
    assert (decided, problems) == (3, [])


def test_a_failure_decided_twice_or_never_is_a_problem():
    decided, problems = _exactly_once(FAILURES, Counter({1: 1}), [record(1, 0), record(1, 0), record(2, 0)])
    assert decided == 1
    assert problems == ["run 1 failure 0: 2 decisions", "run 1 failure 1: 0 decisions"]


def test_a_double_repair_and_a_decision_about_nothing_are_problems():
    decided, problems = _exactly_once(FAILURES, Counter({1: 2, 2: 2}),
                                      [record(1, 0), record(1, 1), record(2, 0), record(3, 0, Action.SEND_EMAIL)])
    assert decided == 3
    assert problems == ["decision ws:3:0 about no failure", "run 2: 2 repairs for 1 RETRY decisions"]
