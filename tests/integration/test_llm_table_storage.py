"""The answer cache and the daily budget in the state table (real Azurite), shared by workers."""

from __future__ import annotations

import logging

import pytest
from azure.data.tables import TableServiceClient

from shared.state import TableStateStore
from tests.fixtures.openai import classification, signals


@pytest.fixture
def service(storage_connection_string):
    return TableServiceClient.from_connection_string(storage_connection_string)


def test_a_second_worker_reuses_the_first_workers_answer(openai_fake, make_analyzer, service, unique_name):
    first = make_analyzer(table_service_client=service, state_table=unique_name)
    second = make_analyzer(table_service_client=service, state_table=unique_name)
    first.refine(signals(), classification(fingerprint="shared-fp"), {})
    _, analysis = second.refine(signals(), classification(fingerprint="shared-fp"), {})
    assert len(openai_fake.chat_requests) == 1
    assert analysis.source == "llm_cache"
    entities = list(service.get_table_client(unique_name).query_entities("PartitionKey eq 'llm-cache'"))
    assert len(entities) == 1


def test_an_answer_cached_for_one_model_is_not_served_for_another(openai_fake, make_analyzer, service, unique_name):
    make_analyzer(table_service_client=service, state_table=unique_name,
                  azure_openai_model="gpt-4o-mini-2024-07-18").refine(signals(), classification(), {})
    make_analyzer(table_service_client=service, state_table=unique_name,
                  azure_openai_model="gpt-4o-2024-08-06").refine(signals(), classification(), {})
    assert len(openai_fake.chat_requests) == 2


def test_the_daily_call_cap_holds_across_workers(openai_fake, make_analyzer, service, unique_name):
    workers = [make_analyzer(table_service_client=service, state_table=unique_name, llm_daily_max_calls=2)
               for _ in range(3)]
    outcomes = [w.refine(signals(), classification(fingerprint=f"fp-{i}"), {})[1] for i, w in enumerate(workers)]
    assert [a.source for a in outcomes] == ["llm", "llm", "rules_fallback"]
    assert "2 of 2 calls" in outcomes[2].fallback_reason
    usage = TableStateStore(service.get_table_client(unique_name)).get("llm-budget", _today())
    assert usage["calls"] == 2 and usage["cost_usd"] == pytest.approx(sum(a.cost_usd for a in outcomes))


def test_a_failed_cache_write_only_warns(openai_fake, make_analyzer, service, unique_name, caplog):
    analyzer = make_analyzer(table_service_client=service, state_table=unique_name)
    service.delete_table(unique_name)  # every write to the state table fails from now on
    with caplog.at_level(logging.WARNING, logger="shared.llm"):
        _, analysis = analyzer.refine(signals(), classification(), {})
    assert analysis.source == "llm" and analysis.root_cause
    assert "could not store the LLM answer" in caplog.text


def _today() -> str:
    from shared.decision import utcnow

    return utcnow().date().isoformat()
