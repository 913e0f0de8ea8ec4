"""How Databricks error answers become typed errors, and which of them the queue retries."""

from __future__ import annotations

import email.utils
import json
import time

import pytest

from shared.databricks import errors
from shared.databricks.errors import error_from_response, parse_error_body, parse_retry_after
from shared.exceptions import AgentError, PermanentError, TransientError


def body(code: str | None, message: str = "something went wrong") -> bytes:
    return json.dumps({"error_code": code, "message": message, "details": []}).encode()


@pytest.mark.parametrize(
    ("status", "code", "expected", "transient"),
    [
        (400, "INVALID_PARAMETER_VALUE", errors.InvalidParameterValue, False),
        (400, "INVALID_STATE", errors.InvalidState, False),
        (400, "MALFORMED_REQUEST", errors.MalformedRequest, False),
        (400, None, errors.BadRequest, False),
        (401, "UNAUTHENTICATED", errors.Unauthenticated, False),
        (403, "PERMISSION_DENIED", errors.PermissionDenied, False),
        (404, "RESOURCE_DOES_NOT_EXIST", errors.ResourceDoesNotExist, False),
        (404, "ENDPOINT_NOT_FOUND", errors.NotFound, False),
        (409, "RESOURCE_ALREADY_EXISTS", errors.ResourceAlreadyExists, False),
        (429, "REQUEST_LIMIT_EXCEEDED", errors.RequestLimitExceeded, True),
        (429, "RESOURCE_EXHAUSTED", errors.ResourceExhausted, True),
        (429, None, errors.TooManyRequests, True),
        (500, "INTERNAL_ERROR", errors.InternalError, True),
        (500, "UNKNOWN", errors.Unknown, True),
        (501, "NOT_IMPLEMENTED", errors.Unimplemented, False),
        (502, None, errors.BadGateway, True),
        (503, "TEMPORARILY_UNAVAILABLE", errors.TemporarilyUnavailable, True),
        (504, None, errors.DeadlineExceeded, True),
        (507, None, errors.InternalError, True),
        (418, None, errors.BadRequest, False),
    ],
)
def test_status_and_error_code_choose_the_class_and_whether_it_is_retried(status, code, expected, transient):
    error = error_from_response(status, body(code))

    assert type(error) is expected
    assert isinstance(error, TransientError) is transient
    assert isinstance(error, PermanentError) is not transient
    assert isinstance(error, AgentError)


def test_an_error_code_never_turns_a_retryable_status_into_a_permanent_error():
    error = error_from_response(503, body("INVALID_STATE", "maintenance"))

    assert isinstance(error, errors.TemporarilyUnavailable)
    assert error.error_code == "INVALID_STATE"


def test_a_specific_class_is_still_its_general_class():
    error = error_from_response(404, body("RESOURCE_DOES_NOT_EXIST"))

    assert isinstance(error, errors.NotFound)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/api/2.2/jobs/get", "Job 123 does not exist."),
        ("/api/2.2/jobs/runs/get", "Run 456 does not exist."),
        ("/api/2.1/clusters/get", "Cluster 0611-000000-abc does not exist"),
    ],
)
def test_a_missing_resource_reported_as_invalid_parameter_is_resource_does_not_exist(path, message):
    error = error_from_response(400, body("INVALID_PARAMETER_VALUE", message), path=path)

    assert isinstance(error, errors.ResourceDoesNotExist)
    assert error.status == 400


def test_the_control_plane_token_bucket_is_rate_limiting_whatever_the_status():
    error = error_from_response(400, body("INVALID_STATE", "RPC token bucket limit has been exceeded"))

    assert isinstance(error, errors.RequestLimitExceeded)
    assert isinstance(error, TransientError)


def test_status_code_message_and_details_are_kept():
    raw = json.dumps({"error_code": "INVALID_STATE", "message": "Run is in progress",
                      "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "X"}]})

    error = error_from_response(400, raw, method="POST", path="/api/2.2/jobs/runs/repair")

    assert (error.status, error.error_code, error.message) == (400, "INVALID_STATE", "Run is in progress")
    assert error.details[0]["reason"] == "X"
    assert "POST /api/2.2/jobs/runs/repair" in str(error)


def test_an_html_gateway_page_becomes_a_readable_message():
    page = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"

    error = error_from_response(502, page)

    assert isinstance(error, errors.BadGateway)
    assert error.message == "502 Bad Gateway"
    assert error.error_code is None


def test_a_plain_code_colon_message_body_is_parsed():
    assert parse_error_body("TEMPORARILY_UNAVAILABLE: try again later") == (
        "TEMPORARILY_UNAVAILABLE", "try again later", [])


def test_an_empty_body_still_gives_a_message():
    error = error_from_response(500, b"")

    assert isinstance(error, errors.InternalError)
    assert error.message == "empty response body"


def test_the_legacy_error_field_is_read_as_the_message():
    assert parse_error_body(b'{"error": "Invalid access token"}') == (None, "Invalid access token", [])


def test_retry_after_is_carried_by_a_429():
    error = error_from_response(429, body("REQUEST_LIMIT_EXCEEDED"), {"Retry-After": "120"})

    assert error.retry_after == 120.0


def test_retry_after_accepts_an_http_date():
    in_30s = email.utils.formatdate(time.time() + 30, usegmt=True)

    assert 28.0 <= parse_retry_after(in_30s) <= 30.0


def test_a_retry_after_date_in_the_past_means_no_wait():
    assert parse_retry_after("Wed, 12 Jun 2024 10:00:30 GMT") == 0.0


def test_a_long_retry_after_is_reported_as_it_is_not_cut_to_urllib3s_six_hours():
    assert parse_retry_after("86400") == 86400.0


@pytest.mark.parametrize(("status", "code", "message"), [
    (400, "COULD_NOT_ACQUIRE_LOCK", "Could not acquire lock on job 42"),  # Airflow provider
    (400, "INVALID_STATE", "Unexpected error while repairing the run"),  # SDK texts, any 4xx
    (400, "INVALID_PARAMETER_VALUE", "Please try again later or try a faster operation."),
    (400, None, "ClusterNotReadyException: cluster 0101 is not ready"),
    (404, "RESOURCE_DOES_NOT_EXIST", "Workspace 12 does not have any associated worker environments"),
])
def test_refusals_databricks_own_clients_retry_are_transient_not_permanent(status, code, message):
    error = error_from_response(status, body(code, message) if code else message.encode())

    assert isinstance(error, errors.RetryableRefusal)
    assert isinstance(error, TransientError) and not isinstance(error, PermanentError)


def test_a_real_refusal_stays_permanent():
    error = error_from_response(400, body("INVALID_STATE", "Run 7 is in progress and cannot be repaired"))

    assert isinstance(error, errors.InvalidState) and isinstance(error, PermanentError)


def test_a_429_keeps_its_own_class_and_retry_after_even_with_a_retryable_text():
    error = error_from_response(429, body("REQUEST_LIMIT_EXCEEDED", "Unexpected error"), {"Retry-After": "5"})

    assert isinstance(error, errors.TooManyRequests) and error.retry_after == 5.0


def test_an_unreadable_retry_after_is_ignored():
    assert parse_retry_after("soon") is None
