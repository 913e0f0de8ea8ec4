"""The behaviour every DecisionStore must have; run against memory (unit) and Azurite (integration)."""

from datetime import timedelta

import pytest

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

    # --- claims per invocation, conditional saves -----------------------------------------------------
    def test_a_released_claim_is_taken_at_once_by_the_next_invocation(self, store):
        store.claim(record(), "inv-1")
        assert store.release("ws:111:0", "inv-1")
        claim = store.claim(record(), "inv-2")
        assert claim.granted and claim.reason == "released_claim_taken"

    def test_only_the_holder_releases_a_claim(self, store):
        store.claim(record(), "inv-1")
        assert not store.release("ws:111:0", "inv-2")
        assert store.claim(record(), "inv-3").reason == "in_progress"

    def test_two_writers_of_one_record_both_keep_their_change(self, store):
        store.save(record(status="acted", outcome="pending", done="repaired run 111"))
        worker, timer = store.get("ws:111:0"), store.get("ws:111:0")
        timer.outcome = "succeeded"
        timer.done += "; reverted job cluster 'etl'"
        store.save(timer)
        store.save(worker.model_copy(update={"status": "done", "notifications": ["n1"]}))
        back = store.get("ws:111:0")
        assert (back.status, back.outcome, back.notifications) == ("done", "succeeded", ["n1"])
        assert back.done.endswith("reverted job cluster 'etl'")

    def test_notification_ids_written_by_two_writers_are_merged(self, store):
        store.save(record(status="done", notifications=["a"]))
        one, two = store.get("ws:111:0"), store.get("ws:111:0")
        store.save(one.model_copy(update={"notifications": ["a", "b"]}))
        store.save(two.model_copy(update={"notifications": ["a", "c"]}))
        assert store.get("ws:111:0").notifications == ["a", "b", "c"]

    def test_a_holder_whose_claim_was_taken_over_cannot_save(self, store):
        from shared.store import ClaimLost

        first = store.claim(record(), "inv-1", now=utcnow() - timedelta(hours=1)).record
        assert store.claim(record(), "inv-2").granted  # inv-1's lease ran out
        with pytest.raises(ClaimLost):
            store.save(first.model_copy(update={"status": "decided"}), owner="inv-1")

    def test_unfinished_records_are_found_by_run_with_databricks_sized_ids(self, store):
        store.save(record("ws:912345678901234:0", chain_id="ws:912345678901234", status="decided"))
        store.save(record("ws:912345678901234:1", chain_id="ws:912345678901234", repair_count=1, status="done"))
        found = store.unfinished("ws", 912345678901234)
        assert [r.key for r in found] == ["ws:912345678901234:0"]
