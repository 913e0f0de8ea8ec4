"""Failures the rules are unsure about go to a second queue, so the model's wait never holds a job-failures slot.

The job-failures function reads the run, claims it and diagnoses it; when the analyzer would ask the model it
does not wait for it: it hands the claim to a fresh token (saved on the record, conditional on its ETag), then
puts a message naming the record and the token on `job-failures-llm`. That queue's function takes the claim
over only from that token (or once released or stale), as its own invocation, and finishes the decision: the
model refines, the rules decide, the agent acts, exactly once. So:

- a redelivery of the job-failures message finds the record held by the token and stops (nothing is decided
  twice; if the hand-over message was never sent, the timer's sweep queues the failure again once the lease
  is over);
- a second delivery of the hand-over message finds the claim held by the first delivery's invocation, not by
  the token, and waits like any message about a claimed run; only one ETag-conditional take-over wins.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.completion import new_invocation_id
from shared.decision import DecisionRecord
from shared.events import FailureEvent
from shared.exceptions import BadRequest

if TYPE_CHECKING:
    from shared.pipeline import PipelineDeps

log = logging.getLogger(__name__)

TOKEN_LABEL = "handover"


class HandOver(BaseModel):
    """Which record the message is about, and the token its claim was handed to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    token: str


def to_message(event: FailureEvent, handover: HandOver) -> str:
    """The event's own message with the hand-over beside it: job-failures can read it too (the extra field is
    ignored there), so a poisoned hand-over queued again starts the failure over from the top."""
    body = json.loads(event.to_message())
    body["handover"] = handover.model_dump()
    return json.dumps(body)


def from_message(body: str | bytes) -> tuple[FailureEvent, HandOver]:
    """Parse a job-failures-llm message; BadRequest names what is wrong."""
    event = FailureEvent.from_message(body)
    try:
        raw = json.loads(body).get("handover")
        return event, HandOver.model_validate(raw)
    except (ValidationError, AttributeError, ValueError) as exc:
        raise BadRequest("the message has no valid 'handover' (key and token)", field="handover") from exc


def is_token(owner: str | None) -> bool:
    """Whether a claim is held by a hand-over token (no invocation runs on it until the message is taken)."""
    return bool(owner) and owner.startswith(f"{TOKEN_LABEL}:")


def hand_over(record: DecisionRecord, event: FailureEvent, deps: PipelineDeps, owner: str) -> DecisionRecord:
    """Give this invocation's claim on `record` to a new token and queue the message that redeems it."""
    assert deps.hand_over is not None
    token = new_invocation_id(TOKEN_LABEL)
    saved = deps.store.save(record.model_copy(update={"claim_owner": token, "claimed_at": deps.clock()}), owner=owner)
    try:
        deps.hand_over(to_message(event, HandOver(key=record.key, token=token)), 0)
    except BaseException:
        # Not sent: give the claim back so this message's next delivery can take it at once.
        from shared.completion import release

        release(deps, record.key, token)
        raise
    return saved
