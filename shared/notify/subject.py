"""The subject line and the few words that say what broke."""

from __future__ import annotations

import re

from shared.decision import DecisionRecord
from shared.notify.kinds import NotificationKind
from shared.notify.outcome import cluster_state, worked_on
from shared.notify.text import MAX_HEADLINE, MAX_SUBJECT, first_line, one_line, redact
from shared.taxonomy import Action

WOULD: dict[Action, str] = {
    Action.RETRY: "would retry",
    Action.RETRY_WITH_NEW_PARAMS: "would resize",
    Action.SEND_EMAIL: "would email",
    Action.ESCALATE: "would escalate",
}

# The subject's last words: what became of the job cluster once the rerun had ended.
_CLUSTER_NOW = {
    "reverted": "job cluster reverted",
    "setting": "larger size kept",
    "changed": "job cluster changed by someone else, left as is",
    "kept": "larger size kept",
    "next": "the agent decides next",
}

_ERROR_CLASS = re.compile(r"\[([A-Z][A-Z0-9_]{2,}(?:\.[A-Z0-9_]+)*)\]")
_LOG_LEVELS = frozenset({"TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "FATAL", "CRITICAL"})
_EXCEPTION = re.compile(r"\b((?:[a-z_][\w]*\.)*([A-Z]\w*(?:Exception|Error)))\b")
_OBJECT = re.compile(r"[`'\"]((?:[A-Za-z_][\w-]*`?\.`?){1,2}[A-Za-z_][\w-]*)[`'\"]")


# --- subject ----------------------------------------------------------------------------------------------
def subject(record: DecisionRecord, kind: NotificationKind) -> str:
    """`[FAILED · permission] nightly_etl — PERMISSION_DENIED on main.sales` and its siblings."""
    cat = record.category.value
    job = job_label(record)
    head = headline(record)
    if kind is NotificationKind.DIAGNOSIS:
        text = f"[FAILED · {cat}] {job} — {head}"
    elif kind is NotificationKind.ESCALATION and budget_spent(record):
        text = f"[ESCALATED · {cat}] {job} — still failing after {record.attempt} attempts: {head}"
    elif kind is NotificationKind.ESCALATION:
        text = f"[ESCALATED · {cat}] {job} — {head}"
    elif kind is NotificationKind.RETRY:
        where = " on a larger cluster" if record.action is Action.RETRY_WITH_NEW_PARAMS else ""
        text = f"[RETRIED · {cat}] {job} — rerun {record.attempt} of {reruns(record)}{where}: {head}"
    elif kind is NotificationKind.OUTCOME:
        ok = record.outcome == "succeeded"
        ended = f"{'succeeded' if ok else 'failed again'} {worked_on(record.resize)}".rstrip()
        state = f" ({_CLUSTER_NOW[cluster_state(record)]})" if record.resize else ""
        text = f"[{'RESOLVED' if ok else 'FAILED AGAIN'} · {cat}] {job} — {ended}{state}"
    else:
        would = WOULD.get(record.action, "would act") if record.action else "would act"
        text = f"[OBSERVE · {would} · {cat}] {job} — {head}"
    return one_line(text, MAX_SUBJECT)


def headline(record: DecisionRecord) -> str:
    """A few words that say what broke: 'PERMISSION_DENIED on main.sales', 'OutOfMemoryError', or the error."""
    text = ""
    for candidate in [*(t.error for t in record.failed_tasks), *record.evidence, record.excerpt, record.reason]:
        if candidate and candidate.strip():
            text = redact(first_line(candidate))
            break
    if not text:
        return "failed"
    classes = [m.group(1) for m in _ERROR_CLASS.finditer(text) if m.group(1) not in _LOG_LEVELS]
    name = classes[0] if classes else None
    if name is None:
        exception = _EXCEPTION.search(text)
        name = exception.group(2) if exception else None
    obj = _OBJECT.search(text)
    if name and obj:
        return one_line(f"{name} on {obj.group(1).replace('`', '')}", MAX_HEADLINE)
    if name:
        rest = text[text.find(name) + len(name):].lstrip(":]) ").strip()
        return one_line(f"{name}: {rest}" if rest else name, MAX_HEADLINE)
    return one_line(text, MAX_HEADLINE)


def job_label(record: DecisionRecord) -> str:
    if record.job_name:
        return one_line(redact(record.job_name), 60)
    return f"job {record.job_id}" if record.job_id is not None else f"run {record.run_id}"


def budget_spent(record: DecisionRecord) -> bool:
    """True when the chain has had every rerun the budget allows."""
    return record.attempt - 1 >= reruns(record)


def reruns(record: DecisionRecord) -> int:
    return max(record.max_attempts - 1, 0)
