"""The feedback endpoints' logic, apart from Azure's HttpRequest.

- `POST /api/decisions/{id}/feedback` (function key, checked by the host): a JSON body.
- `GET|POST /api/feedback/{id}?exp=…&sig=…` (anonymous; the link's signature authenticates): GET serves a small
  form, POST takes its answer (form-encoded or JSON). GET never records anything: mail scanners open links.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote

from shared.exceptions import BadRequest, ConfigError, TransientError

if TYPE_CHECKING:  # the rest is imported on the first request: function_app imports this module (cold start)
    from shared.decision import DecisionRecord
    from shared.learning.loop import LearningLoop
    from shared.store import DecisionStore

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024
# Set by App Service Authentication, which drops the header from incoming requests (learn.microsoft.com:
# "Work with user identities in Azure App Service authentication"); trusted only when the setting says it is on.
PRINCIPAL_HEADER = "X-MS-CLIENT-PRINCIPAL-NAME"
TEMPLATES = Path(__file__).with_name("templates")
# The page may load nothing, post only to itself, and tell no other site the link it came from (it is signed).
HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: str
    mimetype: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


def api(decision_id: str, body: bytes, headers: Mapping[str, str]) -> HttpAnswer:
    """The function-key endpoint (the host checked the key)."""
    from shared.decision import utcnow

    return _with_agent(lambda loop, store, settings: submit_json(
        decision_id, body, headers, loop, store, utcnow(),
        trust_principal_header=settings.feedback_trust_principal_header))


def link(method: str, decision_id: str, params: Mapping[str, str], body: bytes, headers: Mapping[str, str]) -> HttpAnswer:
    """The signed-link endpoint: GET the form, POST the answer."""
    from shared.decision import utcnow

    return _with_agent(lambda loop, store, _settings: signed(method, decision_id, params, body, headers, loop, store,
                                                             utcnow()))


def _with_agent(handle: Any) -> HttpAnswer:
    from shared import runtime

    try:
        deps = runtime.deps()
    except ConfigError as exc:
        log.error("feedback refused: the agent is misconfigured: %s", exc)
        return _json(503, "the agent is misconfigured; see its logs")
    if deps.learning is None:
        return _json(503, "the learning loop is not configured on this agent")
    try:
        return handle(deps.learning, deps.store, deps.settings)
    except TransientError as exc:
        log.warning("feedback not stored, storage unavailable: %s", exc)
        return _json(503, "storage is unavailable; try again in a minute", {"Retry-After": "60"})


# --- the two endpoints, testable with any stores ------------------------------------------------------------
def submit_json(decision_id: str, body: bytes, headers: Mapping[str, str], loop: LearningLoop,
                store: DecisionStore, now: datetime, *, trust_principal_header: bool = False) -> HttpAnswer:
    """POST with the function key: a JSON object with correct, category, action, comment, by.

    With App Service Authentication in front (and FEEDBACK_TRUST_PRINCIPAL_HEADER), the signed-in principal the
    platform passes identifies the person; otherwise every function-key answer counts as one identity."""
    from shared.learning.feedback import parse_feedback

    record = store.get(decision_id) if decision_id else None
    if record is None:
        return _json(404, f"no decision {decision_id!r}")
    try:
        fields = _json_body(body, headers)
        principal = _header(headers, PRINCIPAL_HEADER) if trust_principal_header else None
        feedback = parse_feedback(fields, decision_key=record.key, via="api", now=now, principal=principal)
    except BadRequest as exc:
        return _json(400, str(exc), field_name=exc.field)
    changed, rule, message = loop.answer(record, feedback)
    return _json(200 if not changed else 201, message, extra={"rule": rule.rule_id if rule else None,
                                                              "rule_status": rule.status if rule else None})


def signed(method: str, decision_id: str, params: Mapping[str, str], body: bytes, headers: Mapping[str, str],
           loop: LearningLoop, store: DecisionStore, now: datetime) -> HttpAnswer:
    """GET: the form for the decision the link names; POST: its answer. Both need the link's valid signature."""
    from shared.learning.feedback import parse_feedback
    from shared.taxonomy import Action, Category

    decision_key = decision_id or params.get("key", "")
    check = loop.check_link(decision_key, params.get("exp"), params.get("sig"), now)
    if not check.ok:
        return _page(check.status, "message.html.j2", title="This link does not work", message=check.reason)
    record = store.get(decision_key)
    if record is None:
        return _page(404, "message.html.j2", title="Decision not found",
                     message="The agent has no record of this decision any more.")
    action_url = _self_url(params)
    if method.upper() == "GET":
        verdict = params.get("verdict", "")
        return _page(200, "form.html.j2", title="Was this the right call?", record=_view(record), action_url=action_url,
                     preselected="true" if verdict == "right" else "false" if verdict == "wrong" else "",
                     categories=[c.value for c in Category if c is not Category.UNKNOWN],
                     actions=[a.value for a in Action], error="")
    form = "json" not in headers.get("content-type", headers.get("Content-Type", "")).lower()
    try:
        fields = _form_body(body) if form else _json_body(body, headers)
        feedback = parse_feedback(fields, decision_key=record.key, via="link", now=now)
    except BadRequest as exc:
        if not form:
            return _json(400, str(exc), field_name=exc.field)
        return _page(400, "form.html.j2", title="Was this the right call?", record=_view(record), action_url=action_url, preselected="",
                     categories=[c.value for c in Category if c is not Category.UNKNOWN],
                     actions=[a.value for a in Action], error=str(exc))
    changed, rule, message = loop.answer(record, feedback)
    if not form:
        return _json(201 if changed else 200, message, extra={"rule": rule.rule_id if rule else None,
                                                              "rule_status": rule.status if rule else None})
    return _page(200, "message.html.j2", title="Thank you", message=message)


# --- bodies ---------------------------------------------------------------------------------------------------
def _json_body(body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    from shared.learning.feedback import FIELDS, FeedbackError

    if len(body) > MAX_BODY_BYTES:
        raise FeedbackError(f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body.decode("utf-8") or "null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeedbackError(f"the body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise FeedbackError(f"the body must be a JSON object with {', '.join(FIELDS)}")
    return data


def _form_body(body: bytes) -> dict[str, Any]:
    from shared.learning.feedback import FeedbackError

    if len(body) > MAX_BODY_BYTES:
        raise FeedbackError(f"the form is larger than {MAX_BODY_BYTES} bytes")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=20)
    except (UnicodeDecodeError, ValueError) as exc:
        raise FeedbackError(f"the form could not be read: {exc}") from exc
    return {name: value for name, value in pairs if value != ""}


def _self_url(params: Mapping[str, str]) -> str:
    """Where the form posts: the same signed link (relative, so it works behind any host name)."""
    keep = {k: params[k] for k in ("key", "exp", "sig") if k in params}
    return "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in keep.items())


def _view(record: DecisionRecord) -> dict[str, Any]:
    from shared.redaction import redact

    return {
        "key": record.key, "job": record.job_name or f"job {record.job_id}", "run_id": record.run_id,
        "category": record.category.value, "action": record.action.value if record.action else "-",
        "reason": redact(record.reason)[:400], "evidence": redact(record.evidence[0])[:300] if record.evidence else "",
        "when": (record.decided_at or record.received_at).strftime("%Y-%m-%d %H:%M UTC"),
    }


# --- answers -------------------------------------------------------------------------------------------------
def _json(status: int, message: str, headers: Mapping[str, str] | None = None, *, field_name: str | None = None,
          extra: dict[str, Any] | None = None) -> HttpAnswer:
    body: dict[str, Any] = {"status": status, "message": message}
    if field_name:
        body["field"] = field_name
    body.update(extra or {})
    return HttpAnswer(status, json.dumps(body), headers=dict(headers or {}))


def _page(status: int, template: str, **view: Any) -> HttpAnswer:
    return HttpAnswer(status, _environment().get_template(template).render(**view), "text/html", HTML_HEADERS)


@lru_cache(maxsize=1)
def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    # Autoescaped everywhere: a job name, a reason or an error line is text written by whoever wrote the job.
    return Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, whatever its case (the Functions host passes them lower-cased)."""
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)
