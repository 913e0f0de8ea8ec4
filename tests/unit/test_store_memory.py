import pytest

from shared.store import MemoryDecisionStore
from tests.store_contract import StoreContract


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self):
        return MemoryDecisionStore()
