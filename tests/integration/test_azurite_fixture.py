from azure.data.tables import TableServiceClient


def test_azurite_serves_tables(storage_connection_string, unique_name):
    service = TableServiceClient.from_connection_string(storage_connection_string)
    table = service.create_table(unique_name)
    table.create_entity({"PartitionKey": "p", "RowKey": "r", "n": 1})
    assert table.get_entity("p", "r")["n"] == 1
