"""The bench's counting Table proxy: requests pass unchanged to Azurite and each is counted by kind and status."""

from __future__ import annotations


import pytest
import requests
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode



@pytest.fixture
def proxy(table_proxy):
    return table_proxy


def test_every_table_operation_is_forwarded_and_counted_by_kind(azurite, proxy, unique_name):
    through = azurite.connection_string.replace(f"TableEndpoint=http://127.0.0.1:{azurite.table_port}/",
                                                f"TableEndpoint={proxy}/")
    assert through != azurite.connection_string
    table = TableClient.from_connection_string(through, unique_name)
    table.create_table()
    table.create_entity({"PartitionKey": "p", "RowKey": "1", "n": 1})
    with pytest.raises(ResourceExistsError):
        table.create_entity({"PartitionKey": "p", "RowKey": "1", "n": 1})
    with pytest.raises(ResourceNotFoundError):
        table.get_entity("p", "absent")
    entity = table.get_entity("p", "1")
    table.update_entity({"PartitionKey": "p", "RowKey": "1", "n": 2}, mode=UpdateMode.REPLACE,
                        etag=entity.metadata["etag"], match_condition=MatchConditions.IfNotModified)
    table.upsert_entity({"PartitionKey": "p", "RowKey": "2", "n": 3}, mode=UpdateMode.REPLACE)
    table.upsert_entity({"PartitionKey": "p", "RowKey": "2", "n": 4}, mode=UpdateMode.MERGE)
    assert sorted(e["n"] for e in table.query_entities("PartitionKey eq 'p'")) == [2, 4]
    table.delete_entity("p", "2")

    # What Azurite holds is what was written through the proxy.
    direct = TableClient.from_connection_string(azurite.connection_string, unique_name)
    assert [e["n"] for e in direct.list_entities()] == [2]
    counts = requests.get(f"{proxy}/_proxy/counts", timeout=5).json()
    t = unique_name
    assert counts == {
        "(service) create_table 201": 1, f"{t} insert 201": 1, f"{t} insert 409": 1, f"{t} read 404": 1,
        f"{t} read 200": 1, f"{t} replace 204": 1, f"{t} upsert 204": 1, f"{t} merge 204": 1, f"{t} query 200": 1,
        f"{t} delete 204": 1,
    }
    requests.post(f"{proxy}/_proxy/reset", timeout=5)
    assert requests.get(f"{proxy}/_proxy/counts", timeout=5).json() == {}


def test_a_transaction_is_one_operation_counted_under_its_table(azurite, proxy, unique_name):
    through = azurite.connection_string.replace(f"TableEndpoint=http://127.0.0.1:{azurite.table_port}/",
                                                f"TableEndpoint={proxy}/")
    table = TableClient.from_connection_string(through, unique_name)
    table.create_table()
    requests.post(f"{proxy}/_proxy/reset", timeout=5)
    table.submit_transaction([("create", {"PartitionKey": "p", "RowKey": str(n)}) for n in range(3)])

    assert requests.get(f"{proxy}/_proxy/counts", timeout=5).json() == {f"{unique_name} batch 202": 1}
