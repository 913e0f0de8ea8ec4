"""The behaviour every DecisionStore must have; run against memory (unit) and Azurite (integration)."""

from datetime import timedelta

from shared.decision import DecisionRecord, ResizeChange, utcnow
from shared.taxonomy import Action, Category


def record(key="ws:111:0", **kw):
    base = dict(key=key, workspace_id=key.split(":")[0], run_id=int(key.split(":")[1]), chain_id="ws:111")
    base.update(kw)
    return DecisionRecord(**base)


class StoreContract:
    """Subclasses provide a `store` fixture."""

    def test_first_claim_is_granted(self, store):
        assert store.claim(record(), "msg-1").granted

    def test_second_claim_by_another_message_is_refused_while_in_progress(self, store):
        store.claim(record(), "msg-1")
        claim = store.claim(record(), "msg-2")
        assert not claim.granted and claim.reason == "in_progress"

    def test_redelivery_of_the_same_message_resumes_its_own_claim(self, store):
        store.claim(record(), "msg-1")
        claim = store.claim(record(), "msg-1")
        assert claim.granted and claim.reason == "retry_of_own_claim"

    def test_finished_decision_is_a_duplicate_for_everyone(self, store):
        store.claim(record(), "msg-1")
        store.save(record(status="done", action=Action.RETRY, claim_owner="msg-1"))
        for owner in ("msg-1", "msg-2"):
            claim = store.claim(record(), owner)
            assert not claim.granted and claim.reason == "duplicate"
            assert claim.existing.action is Action.RETRY

    def test_stale_claim_is_taken_over(self, store):
        store.claim(record(), "msg-1", now=utcnow() - timedelta(hours=1))
        claim = store.claim(record(), "msg-2")
        assert claim.granted and claim.reason == "stale_claim_taken_over"

    def test_saved_record_reads_back_whole(self, store):
        original = record(category=Category.RESOURCE, action=Action.RETRY_WITH_NEW_PARAMS, evidence=["OOM <here> & there"],
                          resize=ResizeChange(job_cluster_key="c", before={"num_workers": 2}, after={"num_workers": 4},
                                              summary="workers 2 → 4"), outcome="pending")
        store.save(original)
        back = store.get(original.key)
        assert back.resize.after == {"num_workers": 4}
        assert back.evidence == ["OOM <here> & there"]
        assert back.category is Category.RESOURCE and back.outcome == "pending"

    def test_chain_lists_attempts_in_order(self, store):
        store.save(record("ws:111:1", attempt=2, repair_count=1))
        store.save(record("ws:111:0", attempt=1))
        store.save(record("ws:999:0", chain_id="ws:999"))
        assert [r.attempt for r in store.chain("ws", "ws:111")] == [1, 2]

    def test_pending_outcomes_lists_only_pending_reruns(self, store):
        store.save(record("ws:111:0", outcome="pending"))
        store.save(record("ws:112:0", outcome="succeeded"))
        assert [r.key for r in store.pending_outcomes()] == ["ws:111:0"]

    def test_databricks_sized_ids_survive_the_round_trip(self, store):
        big = record("ws:912345678901234:0", job_id=1098765432109876, chain_id="ws:912345678901234")
        store.save(big)
        back = store.get(big.key)
        assert (back.run_id, back.job_id) == (912345678901234, 1098765432109876)
