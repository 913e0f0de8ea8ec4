"""The message on the `job-failures` queue: one failed run to look at, from a webhook, the poller or a deferral.

The webhook body is only a trigger (ids, nothing else); everything the decision needs is read back from the
Jobs API. Messages are versioned so an old message in the queue during a deploy is still understood.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from shared.exceptions import BadRequest

FAILURE_EVENT_TYPES = frozenset({"jobs.on_failure"})
# host.json: messages are base64-encoded, and Azure Queue Storage takes at most 64 KiB per message.
MAX_QUEUE_MESSAGE_BYTES = 64 * 1024
MAX_JOB_NAME = 200  # what an email or a record shows of a name the payload carries (Databricks allows 4096)
MAX_TASK_KEY = 100  # Databricks' own limit on task keys
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def _int_id(value: Any) -> Any:
    # The docs show ids as quoted placeholders; real payloads may carry numbers. Accept both, nothing else.
    if isinstance(value, bool):
        raise ValueError("must be an integer id")
    if isinstance(value, str):
        # Ids are int64: 19 digits. A longer string is refused before int() meets Python's digit limit.
        if not value.strip().isdigit() or len(value.strip()) > 20:
            raise ValueError("must be an integer id")
        return int(value.strip())
    if isinstance(value, int) and not 0 <= value < 2**63:
        raise ValueError("must be an integer id (0 to 2^63-1)")
    return value


Id = Annotated[int, BeforeValidator(_int_id), Field(ge=0, lt=2**63)]
OptionalId = Annotated[int | None, BeforeValidator(lambda v: None if v is None else _int_id(v))]


class FailureEvent(BaseModel):
    """A run the agent should decide about. `run_id` is always the job run (the parent of a task run)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: Literal[1] = 1
    workspace_id: str | None = None
    job_id: OptionalId = None
    run_id: Id
    task_run_id: OptionalId = None
    task_key: str | None = None
    job_name: str | None = None
    event_type: str = "jobs.on_failure"
    source: Literal["webhook", "poller", "deferred", "incident"] = "webhook"
    received_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    defer_count: int = Field(default=0, ge=0)
    # An incident's own timer (shared/incidents/drive.py): a tick of its canary/release/escalation clock, or the
    # release of one held rerun. Only the agent writes these; a webhook body never carries them (to_event).
    incident_id: str | None = Field(default=None, max_length=200)
    incident_tick: int = Field(default=0, ge=0)
    incident_release: str | None = Field(default=None, max_length=600)

    def to_message(self) -> str:
        """Serialize for the queue."""
        return self.model_dump_json()

    def check_queue_size(self) -> None:
        """BadRequest naming the longest text field when the message would not fit on the queue (base64, 64 KiB)."""
        if len(base64.b64encode(self.to_message().encode("utf-8"))) <= MAX_QUEUE_MESSAGE_BYTES:
            return
        fields = {"job.name": self.job_name or "", "task.task_key": self.task_key or "",
                  "event_type": self.event_type, "workspace_id": self.workspace_id or ""}
        longest = max(fields, key=lambda name: len(fields[name]))
        raise BadRequest(f"field '{longest}' makes the queue message larger than {MAX_QUEUE_MESSAGE_BYTES} bytes",
                         field=longest)

    @classmethod
    def from_message(cls, body: str | bytes) -> "FailureEvent":
        """Parse a queue message; BadRequest names the bad field."""
        try:
            return cls.model_validate_json(body)
        except ValidationError as exc:
            raise BadRequest(_first_problem(exc), field=_first_field(exc)) from exc


# --- The webhook payload (../shared/reference/databricks.md §1.2) -------------------------------------


class _Ref(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _RunRef(_Ref):
    run_id: Id
    parent_run_id: OptionalId = None


class _JobRef(_Ref):
    job_id: Id
    name: str | None = None


class _TaskRef(_Ref):
    task_key: str = Field(min_length=1, max_length=MAX_TASK_KEY)


class WebhookPayload(BaseModel):
    """The body Databricks POSTs to a generic webhook destination."""

    model_config = ConfigDict(extra="ignore")

    event_type: str = Field(min_length=1, max_length=200)
    workspace_id: Annotated[str | None, BeforeValidator(lambda v: None if v is None else str(_int_id(v)))] = None
    run: _RunRef
    job: _JobRef
    task: _TaskRef | None = None

    @property
    def is_failure(self) -> bool:
        return self.event_type in FAILURE_EVENT_TYPES

    def to_event(self, now: datetime | None = None) -> FailureEvent:
        """Normalize: a task-level event names the task run, and its parent is the job run."""
        task_level = self.run.parent_run_id is not None
        return FailureEvent(
            workspace_id=self.workspace_id,
            job_id=self.job.job_id,
            run_id=self.run.parent_run_id if task_level else self.run.run_id,
            task_run_id=self.run.run_id if task_level else None,
            task_key=self.task.task_key if self.task else None,
            job_name=clean_name(self.job.name),
            event_type=self.event_type,
            source="webhook",
            received_at=now or datetime.now(timezone.utc),
        )


def clean_name(name: str | None) -> str | None:
    """A name from the payload, fit to show: control and direction characters out, one line, MAX_JOB_NAME at most.

    The payload is not the Jobs API: the name is shown only until the job's own settings are read.
    """
    if name is None:
        return None
    from shared.redaction import redact  # masked before the cut, or a secret cut in two would pass unseen

    flat = " ".join(_CONTROL.sub(" ", redact(name)).split())
    return (flat if len(flat) <= MAX_JOB_NAME else flat[: MAX_JOB_NAME - 1] + "…") or None


def parse_webhook(body: bytes) -> WebhookPayload:
    """Parse and validate a webhook body; BadRequest names the first bad field."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, and ints past Python's digit limit
        raise BadRequest(f"body is not JSON: {str(exc)[:200]}") from exc
    except RecursionError as exc:
        raise BadRequest("body nests too deeply", field="body") from exc
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    try:
        return WebhookPayload.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(_first_problem(exc), field=_first_field(exc)) from exc


def _first_field(exc: ValidationError) -> str:
    return ".".join(str(p) for p in exc.errors()[0]["loc"])


def _first_problem(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "body"
    msg = "is required" if err["type"] == "missing" else err["msg"].lower()
    return f"field '{where}' {msg}"
