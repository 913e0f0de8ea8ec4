"""The webhook under hostile senders: per-workspace credentials, act mode without credentials, bodies built to
break the parser, and (hypothesis) any body at all: never a 5xx, never a queue message that cannot be sent."""

from __future__ import annotations

import base64
import json
import logging

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from shared import runtime
from shared.events import MAX_JOB_NAME, MAX_QUEUE_MESSAGE_BYTES, FailureEvent
from shared.webhook import MAX_BODY_BYTES, handle_webhook
from shared.webhook_auth import Credential

A, B = "1111111111111111", "2222222222222222"
JSON = {"Content-Type": "application/json"}


def payload(workspace_id=A, **job):
    return {"event_type": "jobs.on_failure", "workspace_id": workspace_id, "run": {"run_id": "111"},
            "job": {"job_id": "42", "name": "nightly_etl", **job}}


def auth(user, password):
    return {**JSON, "Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def served(workspace_id):
    from shared.exceptions import BadRequest

    if str(workspace_id) not in (A, B):
        raise BadRequest(f"unknown workspace_id {workspace_id}: not served by this agent", field="workspace_id")
    return str(workspace_id)


CREDENTIALS = [Credential("sender-a", "password-a", frozenset({A})),
               Credential("sender-b", "password-b", frozenset({B}))]


def call(body, headers=JSON, **kw):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    kw.setdefault("credentials", CREDENTIALS)
    kw.setdefault("check_workspace", served)
    return handle_webhook(raw, headers, **kw)


# --- per-workspace credentials -------------------------------------------------------------------------------
def test_each_credential_admits_its_own_workspace():
    assert call(payload(A), auth("sender-a", "password-a")).status == 202
    assert call(payload(B), auth("sender-b", "password-b")).status == 202


def test_a_credential_of_one_workspace_cannot_announce_a_failure_of_another():
    answer = call(payload(B), auth("sender-a", "password-a"))
    assert answer.status == 400 and answer.event is None


def test_not_admitted_and_unknown_answer_alike_and_name_no_served_id():
    foreign = call(payload(B), auth("sender-a", "password-a"))
    unknown = call(payload("3333"), auth("sender-a", "password-a"))
    assert foreign.status == unknown.status == 400
    assert foreign.message.replace(B, "X") == unknown.message.replace("3333", "X")
    assert A not in unknown.message and B not in unknown.message


def test_a_wrong_password_or_mixed_credentials_are_refused():
    assert call(payload(A), auth("sender-a", "password-b")).status == 401
    assert call(payload(A), auth("sender-b", "password-a")).status == 401
    assert call(payload(A), JSON).status == 401


def test_runtime_reads_per_workspace_passwords_from_their_secrets(monkeypatch):
    workspaces = [
        {"workspace_id": A, "url": "https://a.example", "auth": "entra", "webhook_username": "sender-a",
         "webhook_password_secret_name": "ws-a-webhook"},
        {"workspace_id": B, "url": "https://b.example", "auth": "entra", "webhook_username": "sender-b",
         "webhook_password_secret_name": "ws-b-webhook"},
    ]
    env = {"DATABRICKS_WORKSPACES": json.dumps(workspaces), "WS_A_WEBHOOK": "secret-a-123",
           "WS_B_WEBHOOK": "secret-b-456", "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    try:
        body = json.dumps(payload(A)).encode()
        assert runtime.webhook(body, auth("sender-a", "secret-a-123")).status == 202
        assert runtime.webhook(json.dumps(payload(B)).encode(), auth("sender-a", "secret-a-123")).status == 400
        assert runtime.webhook(body, auth("sender-b", "secret-b-456")).status == 400
        monkeypatch.delenv("WS_A_WEBHOOK")
        assert runtime.webhook(body, auth("sender-a", "secret-a-123")).status == 503  # the secret is gone
    finally:
        runtime.reset()


# --- act mode needs a credential ------------------------------------------------------------------------------
def test_act_mode_without_any_credential_answers_503_with_a_clear_log_line(caplog):
    with caplog.at_level(logging.ERROR, logger="shared.webhook"):
        answer = call(payload(A), JSON, credentials=[], require_credentials=True)
    assert answer.status == 503 and answer.event is None
    assert "AGENT_MODE=act" in caplog.text and "WEBHOOK_USERNAME" in caplog.text


def test_observe_mode_without_credentials_still_takes_events():
    assert call(payload(A), JSON, credentials=[], require_credentials=False).status == 202


def test_runtime_in_act_mode_without_credentials_refuses(monkeypatch):
    for name, value in {"DATABRICKS_WORKSPACE_URL": "https://a.example", "DATABRICKS_AUTH": "entra",
                        "AzureWebJobsStorage": "UseDevelopmentStorage=true", "AGENT_MODE": "act"}.items():
        monkeypatch.setenv(name, value)
    for name in ("WEBHOOK_USERNAME", "WEBHOOK_PASSWORD", "DATABRICKS_WORKSPACES"):
        monkeypatch.delenv(name, raising=False)
    runtime.reset()
    try:
        assert runtime.webhook(json.dumps(payload(A)).encode(), JSON).status == 503
        monkeypatch.setenv("AGENT_MODE", "observe")
        runtime.reset()
        assert runtime.webhook(json.dumps(payload(A)).encode(), JSON).status == 202
    finally:
        runtime.reset()


# --- bodies built to break the parser: a 4xx naming the problem ------------------------------------------------
@pytest.mark.parametrize(("body", "named"), [
    (b'{"a":' * 1_000 + b"1" + b"}" * 1_000, "nests"),
    (b"[" * 20_000, "nests"),
    (b'{"event_type": "jobs.on_failure", "run": {"run_id": 1}, "job": {"job_id": 1}, "x": ' + b"9" * 5_000 + b"}",
     "number"),
    (b'{"event_type": "jobs.on_failure", "run": {"run_id": ' + b"1" * 5_000 + b'}, "job": {"job_id": 1}}', "number"),
    (json.dumps({**payload(A), "task": {"task_key": "k" * 5_000}}).encode(), "task.task_key"),
    (json.dumps({**payload("9" * 40)}).encode(), "workspace_id"),
    (b"\xff\xfe{}", "not JSON"),
])
def test_hostile_bodies_get_a_400_naming_the_problem(body, named):
    answer = call(body, auth("sender-a", "password-a"))
    assert answer.status == 400, answer
    assert named in answer.message


def test_a_huge_job_name_is_cut_and_cleaned_and_the_message_fits_the_queue():
    name = "URGENT\r\nReset your password\u202e at evil.example " + "x" * 60_000
    answer = call(payload(A, name=name[:60_000]), auth("sender-a", "password-a"))
    assert answer.status == 202
    shown = answer.event.job_name
    assert len(shown) <= MAX_JOB_NAME and "\n" not in shown and "\u202e" not in shown
    assert len(base64.b64encode(answer.event.to_message().encode())) <= MAX_QUEUE_MESSAGE_BYTES


def test_an_event_too_large_for_the_queue_names_its_field():
    from shared.exceptions import BadRequest

    event = FailureEvent(run_id=1, task_key="k" * 60_000)
    with pytest.raises(BadRequest) as caught:
        event.check_queue_size()
    assert caught.value.field == "task.task_key"


# --- properties: whatever the body, no 5xx, and every queued event fits the queue -------------------------------
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=200),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5),
    max_leaves=30,
)
IDS = st.one_of(st.integers(min_value=-2, max_value=2**70), st.text(max_size=30), st.none(), st.booleans(),
                st.just("1" * 5_000))
PAYLOADS = st.fixed_dictionaries({
    "event_type": st.sampled_from(["jobs.on_failure", "jobs.on_success", "", "x" * 300]) | st.text(max_size=20),
    "workspace_id": st.sampled_from([A, B, int(A), "3333", None, "", "-1", "1e5"]) | IDS,
    "run": st.fixed_dictionaries({"run_id": IDS}, optional={"parent_run_id": IDS}) | JSON_VALUES,
    "job": st.fixed_dictionaries({"job_id": IDS}, optional={"name": st.text(max_size=3_000) | JSON_VALUES})
    | JSON_VALUES,
}, optional={"task": st.fixed_dictionaries({"task_key": st.text(max_size=300) | JSON_VALUES}) | JSON_VALUES})


def _check(answer):
    assert answer.status < 500, answer
    if answer.event is not None:
        assert answer.status == 202
        assert len(base64.b64encode(answer.event.to_message().encode())) <= MAX_QUEUE_MESSAGE_BYTES
        assert FailureEvent.from_message(answer.event.to_message()) == answer.event


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=PAYLOADS)
def test_no_structured_body_gives_a_5xx(body):
    _check(call(json.dumps(body).encode(), auth("sender-a", "password-a")))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=MAX_BODY_BYTES + 10) | st.text().map(str.encode),
       content_type=st.sampled_from(["application/json", "text/plain", "", "application/json; charset=utf-8"]),
       authorization=st.text(max_size=100) | st.just(auth("sender-a", "password-a")["Authorization"]))
def test_no_byte_string_gives_a_5xx(body, content_type, authorization):
    _check(call(body, {"Content-Type": content_type, "Authorization": authorization}))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(depth=st.integers(min_value=1, max_value=30_000), opener=st.sampled_from([b"[", b'{"a":']),
       digits=st.integers(min_value=1, max_value=20_000))
def test_no_deep_or_long_number_body_gives_a_5xx(depth, opener, digits):
    body = opener * depth + b"1" * digits
    _check(call(body[:MAX_BODY_BYTES], auth("sender-a", "password-a")))


def test_a_secret_in_the_job_name_is_masked_before_the_name_is_cut():
    from tests.secret_catalogue import PAT

    answer = call(payload(A, name="x" * 180 + f" {PAT} trailing"), auth("sender-a", "password-a"))
    assert answer.status == 202 and PAT[:12] not in answer.event.job_name
