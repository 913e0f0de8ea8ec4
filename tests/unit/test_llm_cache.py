"""The answer cache: keyed by model, prompt version and fingerprint; two levels; never fatal."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from shared.llm.cache import AnswerCache, cache_key, detail_digest
from shared.llm.schema import FailureAnalysis
from shared.state import MemoryStateStore
from tests.doubles import FixedClock, unreachable_state_store
from tests.fixtures.openai import ANSWER_CODE

ANSWER = FailureAnalysis.model_validate(ANSWER_CODE)
KEY = dict(model="gpt-4o-2024-08-06", prompt_version="analyze_v1-abc", fingerprint="fp1", rules_category="unknown")


def Clock() -> FixedClock:
    return FixedClock(datetime(2025, 11, 24, 9, 0, tzinfo=timezone.utc))


def test_the_key_changes_with_the_model_the_prompt_and_the_fingerprint():
    base = cache_key(**KEY)
    assert base == cache_key(**KEY)
    for field, other in (("model", "gpt-4o-mini"), ("prompt_version", "analyze_v2-def"), ("fingerprint", "fp2"),
                         ("rules_category", "code")):
        assert cache_key(**{**KEY, field: other}) != base, field


def test_the_detail_digest_ignores_run_specific_values_but_not_names():
    first = ("[TABLE_OR_VIEW_NOT_FOUND] The table `main.sales` cannot be found. at 2025-11-24T09:00:01Z "
             "run 123456 cluster 1124-090001-abcd1234 path /Workspace/Users/a/etl.py:41")
    rerun = ("[TABLE_OR_VIEW_NOT_FOUND] The table `main.sales` cannot be found. at 2025-11-25T10:30:59Z "
             "run 987654 cluster 1125-103059-ffff0000 path /Workspace/Users/b/etl2.py:7")
    other_table = first.replace("main.sales", "main.orders")
    assert detail_digest(first) == detail_digest(rerun)
    assert detail_digest(first) != detail_digest(other_table)


def test_an_answer_is_served_from_the_cache_until_it_expires():
    clock = Clock()
    cache = AnswerCache(MemoryStateStore(), ttl=timedelta(hours=1), clock=clock)
    cache.put("k", ANSWER, model="m", prompt_version="v")
    assert cache.get("k") == ANSWER
    clock.now += timedelta(hours=2)
    assert cache.get("k") is None


def test_another_worker_finds_the_answer_in_the_state_table():
    store, clock = MemoryStateStore(), Clock()
    AnswerCache(store, ttl=timedelta(hours=1), clock=clock).put("k", ANSWER, model="m", prompt_version="v")
    assert AnswerCache(store, ttl=timedelta(hours=1), clock=clock).get("k") == ANSWER
    assert store.get("llm-cache", "k")["model"] == "m"


def test_a_failed_cache_write_only_warns_and_the_answer_stays_in_memory(caplog):
    cache = AnswerCache(unreachable_state_store(), ttl=timedelta(hours=1), clock=Clock())
    with caplog.at_level(logging.WARNING, logger="shared.llm.cache"):
        cache.put("k", ANSWER, model="m", prompt_version="v")
    assert "could not store" in caplog.text
    assert cache.get("k") == ANSWER


def test_an_unreadable_cache_is_a_miss(caplog):
    with caplog.at_level(logging.WARNING, logger="shared.llm.cache"):
        assert AnswerCache(unreachable_state_store(), ttl=timedelta(hours=1), clock=Clock()).get("k") is None
    assert "could not read" in caplog.text


def test_a_stored_answer_that_no_longer_fits_the_schema_is_a_miss():
    store, clock = MemoryStateStore(), Clock()
    store.put("llm-cache", "k", {"answer": {"category": "banana"},
                                 "expires_at": (clock.now + timedelta(hours=1)).isoformat()})
    assert AnswerCache(store, ttl=timedelta(hours=1), clock=clock).get("k") is None


def test_a_zero_ttl_turns_the_cache_off():
    store = MemoryStateStore()
    cache = AnswerCache(store, ttl=timedelta(0), clock=Clock())
    cache.put("k", ANSWER, model="m", prompt_version="v")
    assert cache.get("k") is None and store.get("llm-cache", "k") is None
