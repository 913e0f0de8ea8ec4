"""The view of one decision's email: everything its template shows, already redacted and bounded."""

from __future__ import annotations

from typing import Any

from shared.decision import DecisionRecord
from shared.learning.links import email_links
from shared.notify.kinds import NotificationKind, acted_kind
from shared.notify.links import feedback_links, safe_url
from shared.notify.outcome import outcome_view
from shared.notify.subject import WOULD, budget_spent, headline, job_label, reruns
from shared.notify.task_shape import task_shape
from shared.notify.text import MAX_EVIDENCE_LINES, MAX_LINE, MAX_TASKS, excerpt, one_line, prose, redact, when_label
from shared.settings import Settings
from shared.taxonomy import Action, Category

# What a person can do about each kind of failure, when the LLM gave no suggestion of its own.
CATEGORY_HINTS: dict[Category, str] = {
    Category.PERMISSION: "Grant the principal the job runs as the privilege named in the error (or run the job as "
    "one that has it), then repair the run.",
    Category.CODE: "Fix the code at the place the error points to, then repair the run. A rerun of the same code "
    "fails the same way.",
    Category.DATA: "Check the input named in the error (schema, nulls, duplicates, a missing file or partition), "
    "fix or quarantine it, then repair the run.",
    Category.QUOTA: "Raise the quota or limit named in the error, or make the job ask for less, then repair the run.",
    Category.RESOURCE: "Give the failing task more memory (a larger node type or more workers), or have it process "
    "the data in smaller parts.",
    Category.TIMEOUT: "Usually passes on a rerun. If it keeps timing out, look at what the task waits for and at "
    "the job's timeout.",
    Category.NETWORK: "Usually passes on a rerun. If it keeps failing, check the host named in the error: DNS, "
    "firewall, private endpoint.",
    Category.INFRASTRUCTURE: "Usually passes on a rerun. If it keeps failing, check the cloud provider's status and "
    "the cluster's event log.",
    Category.CONCURRENCY: "Usually passes on a rerun. If it keeps failing, stop the jobs that write the same table "
    "at the same time from overlapping.",
    Category.THROTTLING: "Usually passes on a rerun. If it keeps failing, slow the job's calls down or ask for a "
    "higher limit.",
    Category.CANCELLED: "Nothing to fix if the cancellation was intended.",
    Category.UNKNOWN: "No rule recognised this failure. Read the excerpt and the run page; the feedback link tells "
    "the agent what it was.",
}

_ACTION_LABELS: dict[Action, str] = {
    Action.RETRY: "rerun the failed tasks",
    Action.RETRY_WITH_NEW_PARAMS: "rerun the failed tasks on a larger cluster",
    Action.SEND_EMAIL: "tell the job's owners (nothing changed in Databricks)",
    Action.ESCALATE: "escalate (nothing changed in Databricks)",
    Action.IGNORE: "nothing",
}
_WOULD_TITLE: dict[Action, str] = {
    Action.RETRY: "would have rerun it",
    Action.RETRY_WITH_NEW_PARAMS: "would have rerun it on a larger cluster",
    Action.SEND_EMAIL: "would have emailed its owners",
    Action.ESCALATE: "would have escalated it",
}

# Banner colours: red needs a person, amber is an escalation, blue the agent handled it, grey observe mode.
_ACCENT = {
    NotificationKind.DIAGNOSIS: "#b91c1c",
    NotificationKind.ESCALATION: "#b45309",
    NotificationKind.RETRY: "#1d4ed8",
    NotificationKind.OBSERVE: "#4b5563",
    NotificationKind.OUTCOME: "#15803d",  # green when the rerun succeeded; red (_OUTCOME_FAILED_ACCENT) if not
}
_OUTCOME_FAILED_ACCENT = "#b91c1c"


def _evidence_summary(evidence: list[str]) -> str:
    """The first two distinct evidence lines, as one sentence-like line."""
    lines: list[str] = []
    for line in (e.strip() for e in evidence):
        if line and not any(line in seen or seen in line for seen in lines):
            lines.append(line)
    return " ".join(lines[:2])


# --- views ------------------------------------------------------------------------------------------------
def decision_view(record: DecisionRecord, kind: NotificationKind, settings: Settings) -> dict[str, Any]:
    """Everything the templates show, already redacted and bounded (the templates add no logic of their own)."""
    llm = record.analysis.source in ("llm", "llm_cache")
    # Without an AI analysis the best "what went wrong" is the error line that decided, not the decision itself.
    root_cause = prose(record.analysis.root_cause) or prose(_evidence_summary(record.evidence))
    fix = prose(record.analysis.suggested_fix)
    excerpt_text, excerpt_note = excerpt(record.excerpt)
    job = job_label(record)
    action = record.action
    view: dict[str, Any] = {
        "kind": kind.value,
        "acted_kind": (acted_kind(record) or kind).value,
        "accent": _OUTCOME_FAILED_ACCENT if kind is NotificationKind.OUTCOME and record.outcome != "succeeded"
        else _ACCENT[kind],
        "label": _label(record, kind),
        "title": _title(record, kind, job),
        "preheader": one_line(root_cause or redact(record.reason) or headline(record), 140),
        "job": job,
        "job_id": record.job_id,
        "run_id": record.run_id,
        "run_url": safe_url(record.run_page_url),
        "tasks": [
            {
                "key": redact(t.task_key),
                "state": t.result_state or "",
                "error": one_line(redact(t.error or ""), MAX_LINE),
                "url": safe_url(t.run_page_url),
                **task_shape(t, redact, safe_url),
            }
            for t in record.failed_tasks[:MAX_TASKS]
        ],
        "more_tasks": max(0, len(record.failed_tasks) - MAX_TASKS),
        "when": when_label(record.decided_at or record.received_at),
        "category": record.category.value,
        "action": action.value if action else "",
        "action_label": _ACTION_LABELS.get(action, "") if action else "",
        "would": WOULD.get(action, "") if action else "",
        "done": prose(record.done),
        "reason": prose(record.reason),
        "root_cause": root_cause,
        "root_cause_from": "AI analysis" if llm and record.analysis.root_cause else "",
        "suggested_fix": fix or CATEGORY_HINTS.get(record.category, ""),
        "fix_from": "AI analysis" if llm and fix else "general advice for this kind of failure",
        "evidence": [one_line(redact(e), MAX_LINE) for e in record.evidence[:MAX_EVIDENCE_LINES] if e.strip()],
        "excerpt": excerpt_text,
        "excerpt_note": excerpt_note,
        "attempt": record.attempt,
        "max_attempts": record.max_attempts,
        "reruns": reruns(record),
        "resize": redact(record.resize.summary) if record.resize else "",
        "resize_changes": [c.strip() for c in redact(record.resize.summary).split(";") if c.strip()]
        if record.resize
        else [],
        "cluster": record.resize.job_cluster_key if record.resize else "",
        "observe": record.mode == "observe",
        "budget_spent": budget_spent(record),
        "done_in_box": kind in (NotificationKind.RETRY, NotificationKind.OBSERVE, NotificationKind.OUTCOME),
        "confidence": f"{record.confidence:.0%}" if record.confidence else "",
        # Signed links to the agent's own form when it has a key (shared/learning); else FEEDBACK_URL's plain ones.
        "feedback": email_links(settings, record.key) or feedback_links(settings.feedback_url, record.key),
        "dropped_recipients": ", ".join(record.dropped_recipients),
        "key": record.key,
        "fingerprint": record.fingerprint[:16],
    }
    if kind is NotificationKind.OUTCOME:
        view.update(outcome_view(record))
    return view


_LABEL = {
    NotificationKind.DIAGNOSIS: "Failed · needs a person",
    NotificationKind.ESCALATION: "Escalated",
    NotificationKind.RETRY: "Retried by the agent",
    NotificationKind.OBSERVE: "Observe mode",
    NotificationKind.OUTCOME: "Rerun succeeded",
}


def _label(record: DecisionRecord, kind: NotificationKind) -> str:
    if kind is NotificationKind.OUTCOME and record.outcome != "succeeded":
        return "Failed again"
    return _LABEL[kind]


def _title(record: DecisionRecord, kind: NotificationKind, job: str) -> str:
    if kind is NotificationKind.DIAGNOSIS:
        return f"{job} failed and needs a person"
    if kind is NotificationKind.ESCALATION:
        if budget_spent(record):
            return f"{job} is still failing after {record.attempt} attempts"
        return f"{job} failed and was escalated"
    if kind is NotificationKind.OUTCOME:
        if record.outcome == "succeeded":
            return f"{job} succeeded on the larger cluster"
        return f"{job} failed again on the larger cluster"
    if kind is NotificationKind.RETRY:
        if record.action is Action.RETRY_WITH_NEW_PARAMS:
            return f"{job} failed; the agent reran it on a larger cluster"
        return f"{job} failed; the agent reran it"
    would = _WOULD_TITLE.get(record.action, "would have acted") if record.action else "would have acted"
    return f"{job} failed; the agent {would}"
