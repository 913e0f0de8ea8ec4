"""The webhook: authenticate, bound, parse; never lose a failure, never queue garbage."""

import base64
import json

from hypothesis import given, settings, strategies as st

from shared.webhook import MAX_BODY_BYTES, handle_webhook

JOB_LEVEL = {"event_type": "jobs.on_failure", "workspace_id": "1234567890123456",
             "run": {"run_id": "111"}, "job": {"job_id": "42", "name": "nightly_etl"}}
TASK_LEVEL = {"event_type": "jobs.on_failure", "workspace_id": 1234567890123456, "task": {"task_key": "load_silver"},
              "run": {"run_id": 222, "parent_run_id": 111}, "job": {"job_id": 42, "name": "nightly_etl"}}
JSON = {"Content-Type": "application/json"}


def call(payload, headers=JSON, **kw):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    kw.setdefault("username", None)
    kw.setdefault("password", None)
    return handle_webhook(body, headers, **kw)


def basic(user, password):
    return {**JSON, "Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_job_level_failure_is_accepted_and_queued_with_numeric_ids():
    answer = call(JOB_LEVEL)
    assert answer.status == 202
    assert (answer.event.run_id, answer.event.job_id, answer.event.task_run_id) == (111, 42, None)


def test_task_level_failure_names_the_parent_as_the_run():
    answer = call(TASK_LEVEL)
    assert (answer.event.run_id, answer.event.task_run_id, answer.event.task_key) == (111, 222, "load_silver")
    assert answer.event.workspace_id == "1234567890123456"


def test_other_event_types_are_accepted_but_not_queued():
    answer = call({**JOB_LEVEL, "event_type": "jobs.on_success"})
    assert answer.status == 202 and answer.event is None


def test_unknown_future_event_types_are_accepted_but_not_queued():
    answer = call({**JOB_LEVEL, "event_type": "jobs.on_streaming_backlog_exceeded"})
    assert answer.status == 202 and answer.event is None


def test_missing_run_id_is_a_400_naming_the_field():
    answer = call({**JOB_LEVEL, "run": {}})
    assert answer.status == 400 and "run.run_id" in answer.message


def test_non_numeric_id_is_a_400_naming_the_field():
    answer = call({**JOB_LEVEL, "job": {"job_id": "forty-two"}})
    assert answer.status == 400 and "job.job_id" in answer.message


def test_invalid_json_is_a_400():
    answer = call(b"{not json")
    assert answer.status == 400 and "not JSON" in answer.message


def test_json_that_is_not_an_object_is_a_400():
    assert call(b"[1, 2]").status == 400


def test_body_over_64_kib_is_a_413():
    assert call(b"{" + b" " * MAX_BODY_BYTES + b"}").status == 413


def test_wrong_content_type_is_a_415():
    assert call(JOB_LEVEL, headers={"Content-Type": "text/plain"}).status == 415


def test_basic_auth_is_required_when_configured():
    assert call(JOB_LEVEL, username="databricks", password="s3cret").status == 401


def test_wrong_basic_password_is_a_401():
    assert call(JOB_LEVEL, headers=basic("databricks", "nope"), username="databricks", password="s3cret").status == 401


def test_right_basic_credentials_pass():
    answer = call(JOB_LEVEL, headers=basic("databricks", "s3cret"), username="databricks", password="s3cret")
    assert answer.status == 202 and answer.event is not None


def test_malformed_basic_header_is_a_401_not_a_crash():
    headers = {**JSON, "Authorization": "Basic !!!notbase64"}
    assert call(JOB_LEVEL, headers=headers, username="u", password="p").status == 401


def test_unknown_workspace_is_rejected_with_a_400():
    from shared.exceptions import BadRequest

    def only_known(workspace_id):
        if workspace_id != "1":
            raise BadRequest(f"unknown workspace_id {workspace_id}", field="workspace_id")

    answer = call(JOB_LEVEL, check_workspace=only_known)
    assert answer.status == 400 and "workspace" in answer.message


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_any_body_gets_an_answer_below_500(body):
    assert call(body).status < 500


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                    max_leaves=20))
def test_any_json_value_gets_an_answer_below_500(value):
    assert call(json.dumps(value).encode()).status < 500
