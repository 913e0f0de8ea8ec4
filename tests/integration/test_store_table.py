"""The decision store on real Table Storage (Azurite): same contract, plus a real race."""

import threading

import pytest
from azure.data.tables import TableServiceClient

from shared.store import TableDecisionStore
from tests.store_contract import StoreContract, record


@pytest.fixture
def table_client(storage_connection_string, unique_name):
    service = TableServiceClient.from_connection_string(storage_connection_string)
    service.create_table(unique_name)
    return service.get_table_client(unique_name)


class TestTableStore(StoreContract):
    @pytest.fixture
    def store(self, table_client):
        return TableDecisionStore(table_client)


def race_for_claim(table_client, workers: int) -> list[int]:
    """Let `workers` stores claim the same run at the same moment; the indexes of those granted."""
    stores = [TableDecisionStore(table_client) for _ in range(workers)]
    barrier = threading.Barrier(workers)
    granted = []

    def claim(i):
        barrier.wait()
        if stores[i].claim(record(), f"msg-{i}").granted:
            granted.append(i)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return granted


def test_two_workers_racing_for_one_run_get_exactly_one_claim(table_client):
    assert len(race_for_claim(table_client, 8)) == 1


def test_two_workers_racing_to_take_over_a_stale_claim_get_one(table_client):
    from datetime import timedelta

    from shared.decision import utcnow

    TableDecisionStore(table_client).claim(record(), "dead-worker", now=utcnow() - timedelta(hours=2))
    assert len(race_for_claim(table_client, 6)) == 1


def test_unreachable_storage_is_a_transient_error():
    from shared.exceptions import TransientError

    service = TableServiceClient.from_connection_string(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;", retry_total=0)
    store = TableDecisionStore(service.get_table_client("nothere"))
    with pytest.raises(TransientError):
        store.get("ws:1:0")
