"""Cost of a call, and the daily budget beyond which analysis is rules-only."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from shared.llm.budget import DailyBudget
from shared.llm.cost import Prices, cost_usd
from shared.state import MemoryStateStore
from tests.doubles import FixedClock, unreachable_state_store


def Clock() -> FixedClock:
    return FixedClock(datetime(2025, 11, 24, 23, 0, tzinfo=timezone.utc))


def test_cost_is_tokens_times_the_prices_per_thousand():
    assert cost_usd(1200, 300, Prices(0.0025, 0.01)) == 0.006


def test_calls_beyond_the_daily_cap_are_refused_with_the_reason():
    budget = DailyBudget(MemoryStateStore(), max_calls=2, max_cost_usd=0, clock=Clock())
    budget.charge(0.001)
    assert budget.spent() is None
    budget.charge(0.001)
    assert "2 of 2 calls" in budget.spent()


def test_cost_beyond_the_daily_budget_is_refused():
    budget = DailyBudget(MemoryStateStore(), max_calls=0, max_cost_usd=0.01, clock=Clock())
    budget.charge(0.006)
    assert budget.spent() is None
    budget.charge(0.006)
    assert "LLM_DAILY_BUDGET_USD" in budget.spent()


def test_a_new_utc_day_has_a_new_budget():
    clock = Clock()
    budget = DailyBudget(MemoryStateStore(), max_calls=1, max_cost_usd=0, clock=clock)
    budget.charge(0.0)
    assert budget.spent()
    clock.now += timedelta(hours=2)
    assert budget.spent() is None


def test_workers_sharing_the_state_table_share_the_budget():
    store, clock = MemoryStateStore(), Clock()
    DailyBudget(store, max_calls=2, max_cost_usd=0, clock=clock).charge(0.0)
    DailyBudget(store, max_calls=2, max_cost_usd=0, clock=clock).charge(0.0)
    assert DailyBudget(store, max_calls=2, max_cost_usd=0, clock=clock).spent()
    assert store.get("llm-budget", "2025-11-24") == {"calls": 2, "cost_usd": 0.0}


def test_the_warning_is_logged_once_a_day(caplog):
    budget = DailyBudget(None, max_calls=1, max_cost_usd=0, clock=Clock())
    budget.charge(0.0)
    with caplog.at_level(logging.WARNING, logger="shared.llm.budget"):
        budget.spent()
        budget.spent()
    assert len([r for r in caplog.records if "budget spent" in r.getMessage()]) == 1


def test_a_storage_outage_neither_stops_a_decision_nor_lifts_the_cap(caplog):
    budget = DailyBudget(unreachable_state_store(), max_calls=1, max_cost_usd=0, clock=Clock())
    with caplog.at_level(logging.WARNING):
        budget.charge(0.0)
        assert budget.spent()
    assert "could not" in caplog.text


def test_zero_caps_mean_no_cap():
    budget = DailyBudget(None, max_calls=0, max_cost_usd=0, clock=Clock())
    for _ in range(1000):
        budget.charge(1.0)
    assert budget.spent() is None
