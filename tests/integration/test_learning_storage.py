"""The learning loop on real services: its tables on Azurite, its link key in the Key Vault fake."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timezone

import pytest
from azure.data.tables import TableServiceClient

from shared.decision import DecisionRecord
from shared.learning.feedback import TableFeedbackStore, parse_feedback
from shared.learning.learned_rules import TableLearnedRuleStore, learn
from shared.learning.links import signing_key_reader, with_link_key
from shared.settings import Settings
from shared.store import TableDecisionStore
from shared.taxonomy import Action, Category

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)


def table(connection_string):
    service = TableServiceClient.from_connection_string(connection_string)
    name = "t" + uuid.uuid4().hex[:20]
    service.create_table(name)
    return service.get_table_client(name)


def permission_decision() -> DecisionRecord:
    return DecisionRecord(key="ws:911:0", workspace_id="ws", run_id=911, chain_id="ws:911",
                          category=Category.PERMISSION, action=Action.SEND_EMAIL, fingerprint="0123456789abcdef",
                          evidence=["[INSUFFICIENT_PERMISSIONS] User does not have SELECT"])


def test_people_answering_at_the_same_moment_all_count(storage_connection_string):
    """ETag-guarded updates on Azurite: eight simultaneous confirmations, none lost."""
    client = table(storage_connection_string)
    record = permission_decision()
    people = [f"person{i}@contoso.example" for i in range(8)]
    barrier = threading.Barrier(len(people))

    def answer(by):
        rules = TableLearnedRuleStore(client)
        barrier.wait()
        learn(parse_feedback({"correct": False, "action": "RETRY", "by": by}, decision_key=record.key, via="api",
                             now=NOW, principal=by), record, rules)

    threads = [threading.Thread(target=answer, args=(p,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    rule = TableLearnedRuleStore(client).get(record.fingerprint)
    assert sorted(c.who for c in rule.confirmations) == sorted(people)
    assert rule.status == "active", "more than one person confirmed it"


def test_feedback_is_one_row_per_decision_and_person_on_azurite(storage_connection_string):
    store = TableFeedbackStore(table(storage_connection_string))
    for by in ("ann", "ANN", "bob"):
        store.put(parse_feedback({"correct": True, "by": by}, decision_key="ws:911:0", via="api", now=NOW))
    assert sorted(f.by.lower() for f in store.for_decision("ws:911:0")) == ["ann", "bob"]


def test_decisions_awaiting_an_outcome_verdict_are_found_by_query(storage_connection_string):
    store = TableDecisionStore(table(storage_connection_string))
    for run_id, verdict in ((1, "awaiting"), (2, "confirmed"), (3, None)):
        store.save(DecisionRecord(key=f"ws:{run_id}:0", workspace_id="ws", run_id=run_id, chain_id=f"ws:{run_id}",
                                  outcome_verdict=verdict))
    assert [r.key for r in store.awaiting_verdicts()] == ["ws:1:0"]


@pytest.fixture
def vault(keyvault_fake, keyvault_provider):
    keyvault_fake.set_secret("feedback-signing-key", "key-from-the-vault-0123456789")
    return keyvault_fake, keyvault_provider


def test_the_link_key_is_read_from_key_vault_by_its_name(vault):
    fake, provider = vault
    assert signing_key_reader(Settings(), provider)() == b"key-from-the-vault-0123456789"
    assert with_link_key(Settings(), provider).feedback_signing_key.get_secret_value() == "key-from-the-vault-0123456789"


def test_a_denied_link_key_means_no_links_not_a_failed_decision(vault):
    fake, provider = vault
    fake.deny("feedback-signing-key")
    assert signing_key_reader(Settings(), provider)() is None
