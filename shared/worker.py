"""One queue message, start to end: parse, process, and make sure nothing is lost.

- A message that can never be processed (bad shape, unknown workspace, a run the agent may not read) goes
  straight to the poison queue with its reason recorded, instead of being retried five times.
- A transient failure raises, so the Functions host retries the message; on the last delivery the reason is
  recorded first, and the host moves the message to `job-failures-poison`.
- The reason is stored whole (state kind "poison", by message id), with whether its cause was transient; a
  failure poisoned again after a requeue supersedes its earlier entry and keeps its requeue count. Entries whose
  cause was transient are queued again by the poller once the workspace answers (shared/poison.py).
- `job-failures-llm` messages (shared/handover.py) are handled the same way, into `job-failures-llm-poison`; their
  body parses as a job-failures event too, so a requeue starts that failure over on job-failures.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from shared.completion import new_invocation_id
from shared.events import FailureEvent
from shared.exceptions import PermanentError, TransientError
from shared.handover import from_message as from_handover_message
from shared.pipeline import PipelineDeps, Result, process
from shared.poison import record_poison

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Handled:
    """`poison` is set when the message must go to the poison queue now (the reason is recorded)."""

    result: Result | None = None
    poison: str | None = None


def handle_message(
    body: str, *, message_id: str, dequeue_count: int, max_dequeue_count: int, deps: PipelineDeps
) -> Handled:
    """Process one `job-failures` message; raise to have it retried."""
    return _handle(body, message_id, dequeue_count, max_dequeue_count, deps, llm_stage=False)


def handle_handover_message(
    body: str, *, message_id: str, dequeue_count: int, max_dequeue_count: int, deps: PipelineDeps
) -> Handled:
    """Process one `job-failures-llm` message (shared/handover.py): the model, the decision, the action."""
    return _handle(body, message_id, dequeue_count, max_dequeue_count, deps, llm_stage=True)


def _handle(body: str, message_id: str, dequeue_count: int, max_dequeue_count: int, deps: PipelineDeps, *,
            llm_stage: bool) -> Handled:
    try:
        # The claim belongs to this invocation: a second one of the same message (its lease ran out while this
        # one still runs) must not pass for the owner retrying.
        owner = new_invocation_id(message_id)
        if not llm_stage:
            return Handled(result=process(FailureEvent.from_message(body), deps, owner=owner))
        event, handover = from_handover_message(body)
        return Handled(result=process(event, deps, owner=owner, handover=handover))
    except PermanentError as exc:
        reason = f"{type(exc).__name__}: {exc}"
        record_poison(deps.state, message_id, body, reason, dequeue_count, transient=False,
                      at=datetime.now(timezone.utc))
        return Handled(poison=reason)
    except Exception as exc:
        if dequeue_count >= max_dequeue_count:
            record_poison(deps.state, message_id, body, f"{type(exc).__name__}: {exc} (after {dequeue_count} attempts)",
                          dequeue_count, transient=isinstance(exc, TransientError), at=datetime.now(timezone.utc))
        raise
