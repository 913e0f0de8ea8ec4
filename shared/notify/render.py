"""Turn a decision into an email people can act on: a subject that scans, an HTML and a plain-text body.

The templates (templates/*.html.j2, *.txt.j2) only lay out a view built here. Every text that came from a
run (error, excerpt, evidence, LLM output) is redacted and bounded here, and escaped by Jinja's autoescape
in the HTML templates: error texts contain <, & and whatever a user printed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from shared.decision import DecisionRecord, ResizeChange
from shared.learning.links import email_links
from shared.notify.kinds import NotificationKind, acted_kind
from shared.redaction import redact as _redact  # every run text passes through it: no secret in an email
from shared.settings import Settings
from shared.taxonomy import Action, Category

TEMPLATES = Path(__file__).resolve().parent / "templates"

MAX_SUBJECT = 160
MAX_HEADLINE = 90
MAX_EXCERPT_CHARS = 2_500
MAX_EXCERPT_LINES = 30
MAX_EVIDENCE_LINES = 6
MAX_LINE = 300
MAX_PROSE = 2_000  # root cause, suggested fix, reason
MAX_TASKS = 10
DIGEST_RUNS_PER_GROUP = 15


@dataclass(frozen=True)
class RenderedEmail:
    """What a transport sends."""

    subject: str
    text: str
    html: str


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
_WOULD: dict[Action, str] = {
    Action.RETRY: "would retry",
    Action.RETRY_WITH_NEW_PARAMS: "would resize",
    Action.SEND_EMAIL: "would email",
    Action.ESCALATE: "would escalate",
}
# Banner colours: red needs a person, amber is an escalation, blue the agent handled it, grey observe mode.
_ACCENT = {
    NotificationKind.DIAGNOSIS: "#b91c1c",
    NotificationKind.ESCALATION: "#b45309",
    NotificationKind.RETRY: "#1d4ed8",
    NotificationKind.OBSERVE: "#4b5563",
    NotificationKind.OUTCOME: "#15803d",  # green when the rerun succeeded; red (_OUTCOME_FAILED_ACCENT) if not
    "digest": "#374151",
}
_OUTCOME_FAILED_ACCENT = "#b91c1c"
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


def render(record: DecisionRecord, kind: NotificationKind, settings: Settings) -> RenderedEmail:
    """The email of `kind` about `record`."""
    view = decision_view(record, kind, settings)
    return RenderedEmail(
        subject=subject(record, kind),
        text=_template(f"{kind.value}.txt.j2").render(v=view),
        html=_template(f"{kind.value}.html.j2").render(v=view),
    )


def render_digest(
    recipient: str, items: list[dict[str, Any]], window_start: datetime, settings: Settings
) -> RenderedEmail:
    """One email for the notifications a recipient did not get one by one (the hourly cap, repeats)."""
    view = digest_view(recipient, items, window_start, settings)
    return RenderedEmail(
        subject=view["subject"],
        text=_template("digest.txt.j2").render(v=view),
        html=_template("digest.html.j2").render(v=view),
    )


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
        text = f"[RETRIED · {cat}] {job} — rerun {record.attempt} of {_reruns(record)}{where}: {head}"
    elif kind is NotificationKind.OUTCOME:
        ok = record.outcome == "succeeded"
        ended = f"{'succeeded' if ok else 'failed again'} {_worked_on(record.resize)}".rstrip()
        state = f" ({_CLUSTER_NOW[cluster_state(record)]})" if record.resize else ""
        text = f"[{'RESOLVED' if ok else 'FAILED AGAIN'} · {cat}] {job} — {ended}{state}"
    else:
        would = _WOULD.get(record.action, "would act") if record.action else "would act"
        text = f"[OBSERVE · {would} · {cat}] {job} — {head}"
    return one_line(text, MAX_SUBJECT)


def headline(record: DecisionRecord) -> str:
    """A few words that say what broke: 'PERMISSION_DENIED on main.sales', 'OutOfMemoryError', or the error."""
    text = ""
    for candidate in [*(t.error for t in record.failed_tasks), *record.evidence, record.excerpt, record.reason]:
        if candidate and candidate.strip():
            text = _redact(_first_line(candidate))
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
        return one_line(_redact(record.job_name), 60)
    return f"job {record.job_id}" if record.job_id is not None else f"run {record.run_id}"


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
    root_cause = _prose(record.analysis.root_cause) or _prose(_evidence_summary(record.evidence))
    fix = _prose(record.analysis.suggested_fix)
    excerpt, excerpt_note = _excerpt(record.excerpt)
    job = job_label(record)
    action = record.action
    view: dict[str, Any] = {
        "kind": kind.value,
        "acted_kind": (acted_kind(record) or kind).value,
        "accent": _OUTCOME_FAILED_ACCENT if kind is NotificationKind.OUTCOME and record.outcome != "succeeded"
        else _ACCENT[kind],
        "label": _label(record, kind),
        "title": _title(record, kind, job),
        "preheader": one_line(root_cause or _redact(record.reason) or headline(record), 140),
        "job": job,
        "job_id": record.job_id,
        "run_id": record.run_id,
        "run_url": _safe_url(record.run_page_url),
        "tasks": [
            {
                "key": _redact(t.task_key),
                "state": t.result_state or "",
                "error": one_line(_redact(t.error or ""), MAX_LINE),
                "url": _safe_url(t.run_page_url),
            }
            for t in record.failed_tasks[:MAX_TASKS]
        ],
        "more_tasks": max(0, len(record.failed_tasks) - MAX_TASKS),
        "when": _when(record.decided_at or record.received_at),
        "category": record.category.value,
        "action": action.value if action else "",
        "action_label": _ACTION_LABELS.get(action, "") if action else "",
        "would": _WOULD.get(action, "") if action else "",
        "done": _prose(record.done),
        "reason": _prose(record.reason),
        "root_cause": root_cause,
        "root_cause_from": "AI analysis" if llm and record.analysis.root_cause else "",
        "suggested_fix": fix or CATEGORY_HINTS.get(record.category, ""),
        "fix_from": "AI analysis" if llm and fix else "general advice for this kind of failure",
        "evidence": [one_line(_redact(e), MAX_LINE) for e in record.evidence[:MAX_EVIDENCE_LINES] if e.strip()],
        "excerpt": excerpt,
        "excerpt_note": excerpt_note,
        "attempt": record.attempt,
        "max_attempts": record.max_attempts,
        "reruns": _reruns(record),
        "resize": _redact(record.resize.summary) if record.resize else "",
        "resize_changes": [c.strip() for c in _redact(record.resize.summary).split(";") if c.strip()]
        if record.resize
        else [],
        "cluster": record.resize.job_cluster_key if record.resize else "",
        "observe": record.mode == "observe",
        "budget_spent": budget_spent(record),
        "done_in_box": kind in (NotificationKind.RETRY, NotificationKind.OBSERVE, NotificationKind.OUTCOME),
        "confidence": f"{record.confidence:.0%}" if record.confidence else "",
        "feedback": email_links(settings, record.key) or feedback_links(settings.feedback_url, record.key),
        "key": record.key,
        "fingerprint": record.fingerprint[:16],
    }
    if kind is NotificationKind.OUTCOME:
        view.update(outcome_view(record))
    return view


def outcome_view(record: DecisionRecord) -> dict[str, Any]:
    """What the outcome email adds: how the rerun ended, on which size, and what became of the job cluster.

    The error excerpt is left out: the retry notice carried it, and this email is about how it ended.
    """
    resize = record.resize
    ok = record.outcome == "succeeded"
    before = cluster_size(resize.before) if resize else ""
    after = cluster_size(resize.after) if resize else ""
    name = f"'{_spec_text(resize.job_cluster_key)}'" if resize else ""
    if ok:
        intro = (f"The rerun on the larger cluster succeeded: job cluster {name} worked at {after or 'its new size'}"
                 + (f" (its original size: {before})." if before else "."))
    else:
        intro = (f"The rerun on the larger cluster failed as well: {after or 'the new size'} was not enough, or the "
                 "job failed for another reason. The agent decides about this new failure as about any other "
                 "(another rerun while the budget lasts, else an escalation); you will hear about it separately.")
    state = cluster_state(record)
    return {
        "outcome": record.outcome,
        "succeeded": ok,
        "outcome_intro": intro,
        "size_before": before,
        "size_after": after,
        "cluster_state": state,
        "cluster_note": _cluster_note(state, ok, name, before),
        "preheader": one_line(intro, 140),
        "excerpt": "",
        "excerpt_note": "",
    }


def cluster_state(record: DecisionRecord) -> str:
    """What became of the resized job cluster once the rerun ended.

    'setting' (RESIZE_REVERT=false) and 'changed' (someone edited it since) are recorded by the timer. A rerun
    that failed again hands its resize to the chain's next decision ('next'), which may size it up again or put
    the original back; `reverted` on such a record can mean superseded, so it says nothing here.
    """
    resize = record.resize
    if resize is not None and resize.kept:
        return resize.kept
    if record.outcome != "succeeded":
        return "next"
    return "reverted" if resize is not None and resize.reverted else "kept"


def _cluster_note(state: str, ok: bool, name: str, before: str) -> str:
    """What became of job cluster `name` once the rerun ended, and what (if anything) a person should do."""
    if state == "reverted":
        original = f" ({before})" if before else ""
        note = (f"The agent reverted job cluster {name} to its original size{original}: a resize changes the job's "
                "future runs too.")
        if ok:
            note += (" The next scheduled run will use the old size and may fail the same way: make the change "
                     "permanent in the job's settings.")
        return note
    if state == "next":
        return (f"Job cluster {name} stays at its larger size until the agent's next decision on this chain: another "
                "step up while the budget lasts, or the original size back once it stops rerunning.")
    if state == "changed":
        note = (f"The agent left job cluster {name} as it is: someone changed it after the resize, so the original "
                "size was not put back.")
        return note + (" Check that its settings still give it at least the size that worked." if ok else "")
    why = " (RESIZE_REVERT is false)" if state == "setting" else ""
    if ok:
        return (f"Job cluster {name} keeps the larger size{why}: the job's next runs use it too, and cost more. "
                "Change it back in the job's settings when it is no longer needed.")
    return (f"Job cluster {name} keeps the larger size{why} although it did not help: change it back in the job's "
            "settings.")


def cluster_size(spec: dict[str, Any]) -> str:
    """'Standard_DS4_v2, 8 workers', 'instance pool p-1, autoscale 2–8 workers', 'Standard_DS3_v2, single node'."""
    node = _spec_text(spec.get("node_type_id"))
    pool = _spec_text(spec.get("instance_pool_id"))
    driver = _spec_text(spec.get("driver_node_type_id"))
    parts = [node or (f"instance pool {pool}" if pool else "")]
    if driver and driver != node:
        parts.append(f"driver {driver}")
    parts.append(_workers(spec))
    return ", ".join(p for p in parts if p)


def _worked_on(resize: ResizeChange | None) -> str:
    """'on Standard_DS4_v2' (a new node type), 'on 8 workers' (more workers), else 'with <what changed>'."""
    if resize is None:
        return ""
    node = _spec_text(resize.after.get("node_type_id"))
    if node and node != _spec_text(resize.before.get("node_type_id")):
        return f"on {node}"
    workers = _workers(resize.after)
    if workers and workers != _workers(resize.before):
        return f"on {workers}"
    return f"with {one_line(_redact(resize.summary), 80)}"


def _workers(spec: dict[str, Any]) -> str:
    scale = spec.get("autoscale")
    if isinstance(scale, dict):
        low, high = _spec_text(scale.get("min_workers")) or "?", _spec_text(scale.get("max_workers")) or "?"
        return f"autoscale {low}–{high} workers"
    count = _spec_text(spec.get("num_workers"))
    if not count:
        return ""
    if count == "0":
        return "single node"
    return "1 worker" if count == "1" else f"{count} workers"


def _spec_text(value: Any) -> str:
    """A value of a cluster spec (job settings: anyone who can edit the job wrote it), as one short line."""
    return one_line(_redact(str(value)), 80) if value is not None and not isinstance(value, (dict, list)) else ""


def digest_view(
    recipient: str, items: list[dict[str, Any]], window_start: datetime, settings: Settings
) -> dict[str, Any]:
    """The digest's view: held notifications grouped by failure fingerprint, largest group first."""
    groups: dict[str, dict[str, Any]] = {}
    for item in sorted(items, key=lambda i: i.get("when") or ""):
        key = item.get("fingerprint") or item.get("id", "")
        group = groups.setdefault(key, {
            "headline": one_line(_redact(item.get("headline") or ""), MAX_HEADLINE),
            "category": item.get("category") or "unknown",
            "runs": [],
            "jobs": set(),
        })
        group["jobs"].add(item.get("job") or "")
        group["runs"].append({
            "job": one_line(_redact(item.get("job") or ""), 60),
            "run_id": item.get("run_id"),
            "url": _safe_url(item.get("run_url")),
            "kind": item.get("kind") or "",
            "action": item.get("action") or "",
            "when": item.get("when_label") or "",
            "subject": one_line(_redact(item.get("subject") or ""), MAX_SUBJECT),
        })
    ordered = sorted(groups.values(), key=lambda g: -len(g["runs"]))
    for group in ordered:
        group["count"] = len(group["runs"])
        group["job_count"] = len(group["jobs"] - {""})
        group["more"] = max(0, group["count"] - DIGEST_RUNS_PER_GROUP)
        group["runs"] = group["runs"][:DIGEST_RUNS_PER_GROUP]
        del group["jobs"]
    total = len(items)
    start = window_start.astimezone(timezone.utc)
    window = f"{start:%Y-%m-%d %H:%M}–{(start.hour + 1) % 24:02d}:00 UTC"
    kinds = "failure" if len(ordered) == 1 else "failures"
    return {
        "kind": "digest",
        "accent": _ACCENT["digest"],
        "label": "Digest",
        "title": f"{total} notification{'s' if total != 1 else ''} held back between {window}",
        "preheader": f"{len(ordered)} distinct {kinds}; the largest: {ordered[0]['headline'] if ordered else ''}",
        "subject": one_line(
            f"[DIGEST] {total} job failure notice{'s' if total != 1 else ''} in the hour from "
            f"{start:%H:%M} UTC — {len(ordered)} distinct {kinds}",
            MAX_SUBJECT,
        ),
        "recipient": recipient,
        "window": window,
        "total": total,
        "groups": ordered,
        "cap": settings.email_max_per_recipient_per_hour,
        "repeat_minutes": settings.email_repeat_window_minutes,
    }


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


# --- helpers ----------------------------------------------------------------------------------------------
def feedback_links(base: str | None, key: str) -> dict[str, str] | None:
    """Links to the feedback endpoint: '{key}' in FEEDBACK_URL is replaced, else ?key= is added; plus verdicts."""
    if not base:
        return None
    if "{key}" in base:
        page = base.replace("{key}", quote(key, safe=""))
    else:
        page = _with_query(base, key=key)
    return {"page": page, "right": _with_query(page, verdict="right"), "wrong": _with_query(page, verdict="wrong")}


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _safe_url(url: str | None) -> str | None:
    """Only http(s) links go into an email (a javascript: URL in a run page field would be a trap)."""
    if url and url.strip().lower().startswith(("https://", "http://")) and not any(c in url for c in "\r\n\"'<> "):
        return url.strip()
    return None


def one_line(text: str, limit: int) -> str:
    """Whitespace (line breaks included) collapsed, cut at `limit` with an ellipsis."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _prose(text: str | None) -> str:
    if not text or not text.strip():
        return ""
    cleaned = _redact(text.strip())
    return cleaned if len(cleaned) <= MAX_PROSE else cleaned[: MAX_PROSE - 1].rstrip() + "…"


def _excerpt(text: str) -> tuple[str, str]:
    """The excerpt trimmed to what fits in an email, and a note saying how much was left out."""
    redacted = _redact(text or "").expandtabs(4).strip("\n")
    if not redacted.strip():
        return "", ""
    lines = redacted.splitlines()
    kept = lines[:MAX_EXCERPT_LINES]
    out = "\n".join(line if len(line) <= 400 else line[:399] + "…" for line in kept)
    if len(out) > MAX_EXCERPT_CHARS:
        out = out[:MAX_EXCERPT_CHARS].rstrip() + "…"
    left = len(lines) - len(kept)
    if left > 0:
        return out, f"{left} more line{'s' if left != 1 else ''} on the run page"
    if len(out) < len(redacted):
        return out, "shortened; the full text is on the run page"
    return out, ""


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def budget_spent(record: DecisionRecord) -> bool:
    """True when the chain has had every rerun the budget allows."""
    return record.attempt - 1 >= _reruns(record)


def _reruns(record: DecisionRecord) -> int:
    return max(record.max_attempts - 1, 0)


def _when(value: datetime | None) -> str:
    if value is None:
        return ""
    value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return f"{value.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"


def when_label(value: datetime | None) -> str:
    return _when(value)


@lru_cache(maxsize=1)
def _environment() -> Any:
    # Jinja2 is imported on first render, not when the package is imported (cold start).
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=True, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _template(name: str) -> Any:
    return _environment().get_template(name)
