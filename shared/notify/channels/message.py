"""What a channel is told about one decision (or incident): a title, a few facts, a link, and a dedup key."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from shared.decision import DecisionRecord
from shared.redaction import redact

Event = Literal["trigger", "resolve", "info"]
Severity = Literal["critical", "error", "warning", "info"]

# Escalations page someone; a diagnosis is an error to read; a rerun started is information.
_SEVERITY: dict[str, Severity] = {"escalation": "critical", "diagnosis": "error", "retry": "info",
                                  "observe": "info", "outcome": "info", "incident": "critical"}


class ChannelMessage(BaseModel):
    """One notification for chat or paging, already redacted."""

    kind: str
    event: Event = "trigger"
    dedup_key: str = Field(max_length=255, description="The chain's (or incident's) id: PagerDuty groups on it.")
    title: str
    summary: str
    severity: Severity = "error"
    facts: list[tuple[str, str]] = Field(default_factory=list)
    run_url: str | None = None
    source: str = "databricks-ai-agent"
    component: str | None = None  # the job
    group: str | None = None  # the workspace
    category: str | None = None


def from_decision(record: DecisionRecord, kind: str, *, headline: str, event: Event = "trigger") -> ChannelMessage:
    """The message for a decision's notification of `kind` (diagnosis, escalation, retry, observe, outcome)."""
    job = record.job_name or (f"job {record.job_id}" if record.job_id is not None else "a job")
    action = record.action.value if record.action is not None else "-"
    facts = [("Job", job), ("Run", str(record.run_id)), ("Category", record.category.value), ("Action", action),
             ("Attempt", f"{record.attempt} of {record.max_attempts + 1}")]
    if record.done:
        facts.append(("Done", record.done))
    title = {"escalation": f"Escalation: {job} keeps failing", "diagnosis": f"{job} failed: needs a person",
             "retry": f"{job} failed: the agent reran it", "observe": f"{job} failed (observe mode)",
             "outcome": f"{job}: the rerun ended"}.get(kind, f"{job}: {kind}")
    return ChannelMessage(
        kind=kind, event=event, dedup_key=record.chain_id[:255], title=redact(title)[:250],
        summary=redact(headline or record.reason)[:1000], severity=_SEVERITY.get(kind, "error"),
        facts=[(k, redact(v)[:300]) for k, v in facts], run_url=record.run_page_url, component=job[:100],
        group=record.workspace_id, category=record.category.value,
    )


def resolved(record: DecisionRecord, *, summary: str) -> ChannelMessage:
    """The chain recovered: resolve what was triggered under its dedup key."""
    job = record.job_name or f"job {record.job_id}"
    return ChannelMessage(kind="resolved", event="resolve", dedup_key=record.chain_id[:255],
                          title=redact(f"{job} recovered")[:250], summary=redact(summary)[:1000], severity="info",
                          run_url=record.run_page_url, component=job[:100], group=record.workspace_id,
                          category=record.category.value)
