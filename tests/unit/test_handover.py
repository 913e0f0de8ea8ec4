"""The hand-over to job-failures-llm (shared/handover.py) in memory: the first stage never waits for the model,
the second finishes the decision once, and no redelivery of either message acts twice."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from shared.classify import Classification
from shared.decision import Analysis
from shared.events import FailureEvent
from shared.exceptions import BadRequest, TransientError
from shared.handover import from_message, is_token
from shared.pipeline import process
from shared.taxonomy import Action, Category
from shared.worker import handle_handover_message, handle_message
from tests.unit.test_pipeline import MemoryJobsApi, deps_for, run_json

UNSURE = "Step finalize_klm ended with status 3 after 412 s; see the step's own report for details."


@dataclass
class ModelDouble:
    """An analyzer that asks 'the model' when the rules are unsure; the model says: a network blip, rerun."""

    calls: list[str] = field(default_factory=list)
    during_call: object = None  # run this while 'the model thinks' (another delivery arriving meanwhile)

    def why_ask(self, classification):
        return "unsure" if classification.category is Category.UNKNOWN else None

    def refine(self, signals, classification, context):
        if self.why_ask(classification) is None:
            return classification, Analysis(source="rules", llm_outcome="not_asked")
        self.calls.append(context.get("job_name"))
        if callable(self.during_call):
            self.during_call()
        refined = replace(classification, category=Category.NETWORK, action=Action.RETRY, confidence=0.9)
        return refined, Analysis(source="llm", llm_outcome="override", root_cause="a network blip")


def llm_deps(error=UNSURE):
    api = MemoryJobsApi({111: run_json()}, error=error)
    deps, queued = deps_for(api)
    model = ModelDouble()
    sent: list[tuple[str, int]] = []
    deps.analyzer = model
    deps.hand_over = lambda body, delay: sent.append((body, delay))
    return api, deps, queued, model, sent


def first(deps):
    return handle_message('{"run_id": 111}', message_id="m1", dequeue_count=1, max_dequeue_count=5, deps=deps)


def second(deps, body):
    return handle_handover_message(body, message_id="m2", dequeue_count=1, max_dequeue_count=5, deps=deps)


def test_an_unsure_failure_is_handed_over_without_waiting_for_the_model_and_decided_once_by_the_llm_queue():
    api, deps, queued, model, sent = llm_deps()

    handed = first(deps)

    assert handed.result.status == "handed_over" and model.calls == [] and api.repairs == []
    record = deps.store.get("ws:111:0")
    assert record.status == "claimed" and is_token(record.claim_owner)
    (body, delay), = sent
    event, handover = from_message(body)
    assert (event.run_id, handover.key, handover.token, delay) == (111, "ws:111:0", record.claim_owner, 0)

    decided = second(deps, body)

    assert decided.result.status == "decided" and decided.result.action is Action.RETRY
    assert model.calls == ["nightly"] and api.repairs == [111]
    record = deps.store.get("ws:111:0")
    assert record.status == "done" and record.analysis.source == "llm" and record.category == "network"
    assert queued == [] and len(sent) == 1


def test_a_sure_failure_is_decided_in_the_first_stage_and_nothing_goes_to_the_llm_queue():
    api, deps, _, model, sent = llm_deps(error="java.net.SocketTimeoutException: Read timed out")

    assert first(deps).result.status == "decided"
    assert sent == [] and model.calls == [] and api.repairs == [111]


def test_without_a_hand_over_the_model_is_asked_in_the_first_invocation():
    api, deps, _, model, _ = llm_deps()
    deps.hand_over = None

    assert first(deps).result.status == "decided" and model.calls == ["nightly"] and api.repairs == [111]


def test_a_redelivery_of_the_first_message_after_the_hand_over_neither_hands_over_again_nor_acts():
    api, deps, queued, model, sent = llm_deps()
    first(deps)

    again = first(deps)

    assert again.result.status == "in_progress" and "LLM queue" in again.result.detail
    assert len(sent) == 1 and queued == [] and api.repairs == [] and model.calls == []
    second(deps, sent[0][0])
    assert first(deps).result.status == "duplicate" and api.repairs == [111]


def test_a_second_delivery_of_the_hand_over_while_the_first_runs_waits_and_then_is_a_duplicate():
    api, deps, _, model, sent = llm_deps()
    first(deps)
    body = sent[0][0]
    during: list = []
    model.during_call = lambda: during.append(second(deps, body))  # the same message, delivered again meanwhile

    decided = second(deps, body)

    assert decided.result.status == "decided" and during[0].result.status == "in_progress"
    assert api.repairs == [111] and len(model.calls) == 1
    # The waiting delivery was put back on the LLM queue (not job-failures), with the same hand-over.
    (later, delay), = sent[1:]
    assert from_message(later)[1] == from_message(body)[1] and delay >= 1
    assert second(deps, later).result.status == "duplicate" and api.repairs == [111]


def test_a_hand_over_delivery_that_failed_releases_its_claim_so_the_next_one_finishes_it():
    api, deps, _, model, sent = llm_deps()
    first(deps)
    body = sent[0][0]
    real_repair = api.repair_run

    def refused(*a, **k):
        raise TransientError("the workspace did not answer")
    api.repair_run = refused
    with pytest.raises(TransientError):
        second(deps, body)
    assert deps.store.get("ws:111:0").claim_owner is None  # released, not left to the lease

    api.repair_run = real_repair
    assert second(deps, body).result.status == "decided" and api.repairs == [111]
    assert deps.store.get("ws:111:0").status == "done"


def test_a_hand_over_that_could_not_be_sent_gives_the_claim_back_and_the_first_message_retries():
    api, deps, _, model, sent = llm_deps()

    def down(body, delay):
        raise TransientError("queue unreachable")
    deps.hand_over = down
    with pytest.raises(TransientError):
        first(deps)
    assert deps.store.get("ws:111:0").claim_owner is None

    deps.hand_over = lambda body, delay: sent.append((body, delay))
    assert first(deps).result.status == "handed_over" and len(sent) == 1


def test_a_stale_token_is_not_redeemed_by_an_older_hand_over_message():
    api, deps, _, model, sent = llm_deps()
    first(deps)
    old = sent[0][0]
    event, handover = from_message(old)
    forged = old.replace(handover.token, "handover:someone-else")

    assert second(deps, forged).result.status == "in_progress"
    assert api.repairs == [] and model.calls == []


def test_a_hand_over_message_without_its_hand_over_goes_to_poison_with_the_reason():
    api, deps, _, _, _ = llm_deps()

    handled = second(deps, '{"run_id": 111}')

    assert handled.poison and "handover" in handled.poison
    with pytest.raises(BadRequest):
        from_message('{"run_id": 111, "handover": {"key": "ws:111:0"}}')
    assert FailureEvent.from_message('{"run_id": 111, "handover": {"key": "k", "token": "t"}}').run_id == 111


def test_the_first_stage_reads_no_job_settings_for_an_unsure_failure_and_the_llm_queue_honours_the_tags():
    from shared.databricks.models import Job
    from shared.decide import TAG_ENABLED

    api, deps, _, model, sent = llm_deps()
    reads: list[int] = []

    def get_job(job_id):
        reads.append(job_id)
        return Job.model_validate({"job_id": job_id, "settings": {"name": "nightly",
                                                                   "tags": {TAG_ENABLED: "off"}}})
    api.get_job = get_job

    assert first(deps).result.status == "handed_over" and reads == []  # jobs/get: the tightest budget
    decided = second(deps, sent[0][0])
    assert reads and decided.result.status == "decided"
    assert model.calls == [] and api.repairs == []  # the job's tag turned the agent off: no model, no rerun
