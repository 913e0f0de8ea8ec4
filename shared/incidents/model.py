"""What the `incidents` table holds: the cause pointer that groups failures, the incident, its members.

A failure of a cause nobody else shares costs one row (the pointer, inserted if absent). The incident row is
written when a second job (INCIDENT_MIN_JOBS) shares the cause; from then on it carries the shared state
(jobs, who was told what, canary, release, escalation), always written conditionally on its ETag.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr

from shared.taxonomy import Category

MAX_JOBS_LISTED = 50  # job references kept for the notification ("and 150 more" past them)
MAX_JOB_IDS = 1500  # distinct job ids kept for counting; ~15 KB of JSON, well inside one property
MAX_FORMING = 20  # members a forming incident remembers before it opens


class JobRef(BaseModel):
    """One member failure as the incident lists it."""

    key: str  # its decision record
    job_id: int | None = None
    job_name: str | None = None
    run_id: int
    run_url: str | None = None
    attempt: int = 1
    audience: list[str] = Field(default_factory=list, description="Who hears about this job's failures.")
    # Its own error line: failures grouped by fingerprint may differ in what the placeholders hid (which table,
    # which column), and a folded email must still tell each owner what broke in their job.
    cause_line: str = ""

    @property
    def job_label(self) -> str:
        return self.job_name or (f"job {self.job_id}" if self.job_id is not None else f"run {self.run_id}")

    @property
    def job_token(self) -> str:
        # Distinct jobs are counted by id; a run without a job (never here, but cheap to guard) counts alone.
        return str(self.job_id) if self.job_id is not None else f"run:{self.run_id}"


class Audience(BaseModel):
    """One recipient list and what it was told."""

    to: list[str]
    notices: list[str] = Field(default_factory=list)  # outbox ids, in order
    told_at: datetime | None = None
    jobs_told: int = 0  # the incident's job count at the last notice


class CausePointer(BaseModel):
    """The current incident of one cause key: while forming (one job so far) it is all there is."""

    cause_key: str
    incident_id: str
    first_seen: datetime
    last_seen: datetime
    opened: bool = False
    members: list[JobRef] = Field(default_factory=list)  # while forming
    category: Category = Category.UNKNOWN
    fingerprint: str = ""
    diagnosis: str = ""

    _etag: Any = PrivateAttr(default=None)


class Incident(BaseModel):
    """Failures of different jobs with one cause, within the window."""

    id: str
    workspace_id: str
    cause_key: str
    cause: str  # for people: 'cluster termination reason CLOUD_PROVIDER_RESOURCE_STOCKOUT'
    category: Category
    fingerprint: str = ""
    diagnosis: str = ""  # the shared diagnosis (the opener's headline)
    holds: bool = False  # reruns are held while it lasts (a transient cause outside the job)
    state: Literal["open", "resolved"] = "open"
    first_seen: datetime
    last_seen: datetime
    opened_at: datetime
    job_ids: list[str] = Field(default_factory=list)
    job_count: int = 0
    jobs: list[JobRef] = Field(default_factory=list)
    members: int = 0
    audiences: dict[str, Audience] = Field(default_factory=dict)
    canary_key: str | None = None
    canary_started_at: datetime | None = None
    canaries: int = 0  # canary reruns released so far
    next_canary_at: datetime | None = None
    recovered_at: datetime | None = None
    released_all: bool = False
    escalated_at: datetime | None = None
    resolved_at: datetime | None = None
    resolution: str = ""
    tick_seq: int = 0  # the incident's one chain of timer messages: only the tick with this number acts
    tick_due_at: datetime | None = None  # when that tick should come; the timer restarts a chain past it

    _etag: Any = PrivateAttr(default=None)

    def add_job(self, ref: JobRef) -> bool:
        """Count `ref`'s job (and list it); True if the job is new to the incident."""
        self.members += 1
        if ref.job_token in self.job_ids:
            return False
        self.job_count += 1
        if len(self.job_ids) < MAX_JOB_IDS:
            self.job_ids.append(ref.job_token)
        if len(self.jobs) < MAX_JOBS_LISTED:
            self.jobs.append(ref)
        return True


class Member(BaseModel):
    """One member failure's row: which decision, and whether its rerun was held."""

    incident_id: str
    key: str
    job_id: int | None = None
    run_id: int
    attempt: int = 1
    joined_at: datetime
    held: bool = False


def to_doc(model: BaseModel) -> str:
    """JSON for the table, redacted: a diagnosis or a job name may quote a token, and the table never holds one."""
    from shared.redaction import redact_data

    return json.dumps(redact_data(model.model_dump(mode="json")), ensure_ascii=False)


def from_doc(cls: type[BaseModel], text: str) -> Any:
    return cls.model_validate(json.loads(text))
