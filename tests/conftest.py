"""Shared fixtures. Each service's fixtures live in tests/fixtures/<service>.py and are registered here."""

pytest_plugins = [
    "tests.fixtures.azurite",
    "tests.fixtures.databricks",
    "tests.fixtures.keyvault",
    "tests.fixtures.email",
    "tests.fixtures.openai",
]
