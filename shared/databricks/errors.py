"""Databricks REST errors as types, chosen by tables rather than ifs (after databricks-sdk-py errors/platform.py).

Every class is also a TransientError (the queue message is retried) or a PermanentError (recorded, completed),
so callers can catch by meaning (`except TransientError`) or by cause (`except InvalidState`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

from shared.exceptions import AgentError, PermanentError, TransientError


class DatabricksError(AgentError):
    """An error from the Databricks REST API (or from the way to it); keeps status, error_code and message."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        details: list[Any] | None = None,
        retry_after: float | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.error_code = error_code
        self.details = details or []
        self.retry_after = retry_after
        self.method = method
        self.path = path
        where = f" on {method} {path}" if method and path else ""
        label = " ".join(str(part) for part in (status, error_code) if part)
        super().__init__(f"Databricks {label or 'error'}{where}: {message}")


# --- By HTTP status --------------------------------------------------------------------------------------


class BadRequest(DatabricksError, PermanentError):
    """400: the request is wrong for the current state of the workspace."""


class Unauthenticated(DatabricksError, PermanentError):
    """401: no credential, or one of an unsupported type."""


class PermissionDenied(DatabricksError, PermanentError):
    """403: the identity lacks the permission (or the token is invalid)."""


class NotFound(DatabricksError, PermanentError):
    """404: no such resource or endpoint."""


class ResourceConflict(DatabricksError, PermanentError):
    """409: conflicts with the resource's current state."""


class TooManyRequests(DatabricksError, TransientError):
    """429: rate limited; `retry_after` holds the server's wish in seconds, when it gave one."""


class Cancelled(DatabricksError, TransientError):
    """499: the request was cancelled before it finished."""


class InternalError(DatabricksError, TransientError):
    """500: the service failed; nothing the caller did."""


class Unimplemented(DatabricksError, PermanentError):
    """501: the operation is not implemented or not enabled in this workspace."""


class BadGateway(DatabricksError, TransientError):
    """502: a gateway in front of the workspace failed."""


class TemporarilyUnavailable(DatabricksError, TransientError):
    """503: the service is overloaded or in maintenance."""


class DeadlineExceeded(DatabricksError, TransientError):
    """504: the request timed out inside Databricks."""


# --- By error_code (more specific; subclasses of their status class) --------------------------------------


class InvalidParameterValue(BadRequest):
    """INVALID_PARAMETER_VALUE: a field is missing, malformed or refers to nothing."""


class InvalidState(BadRequest):
    """INVALID_STATE: not allowed now (for example repairing a run that is still in progress)."""


class MalformedRequest(BadRequest):
    """MALFORMED_REQUEST: the body could not be parsed."""


class ResourceDoesNotExist(NotFound):
    """RESOURCE_DOES_NOT_EXIST: the job, run or cluster is not there (runs are deleted after 60 days)."""


class Aborted(ResourceConflict):
    """ABORTED: lost a race with a concurrent change."""


class AlreadyExists(ResourceConflict):
    """ALREADY_EXISTS."""


class ResourceAlreadyExists(ResourceConflict):
    """RESOURCE_ALREADY_EXISTS."""


class RequestLimitExceeded(TooManyRequests):
    """REQUEST_LIMIT_EXCEEDED: the workspace's API rate limit."""


class ResourceExhausted(TooManyRequests):
    """RESOURCE_EXHAUSTED: a quota is used up for now."""


class Unknown(InternalError):
    """UNKNOWN."""


class DataLoss(InternalError):
    """DATA_LOSS."""


class RetryableRefusal(DatabricksError, TransientError):
    """A 4xx/5xx that Databricks' own clients retry: the server refused for now (a lock, a busy backend).

    The status says "bad request", but databricks-sdk-py (`_BaseClient._is_retryable`) and the Airflow provider
    (`BaseDatabricksHook._retryable_error`) retry these, so they are transient here too: never an email.
    """


# --- No HTTP answer ---------------------------------------------------------------------------------------


class DatabricksConnectionError(DatabricksError, TransientError):
    """The workspace could not be reached (refused, reset, DNS, TLS)."""


class DatabricksTimeout(DatabricksConnectionError):
    """No answer within the timeout."""


class TokenUnavailable(DatabricksError, TransientError):
    """No access token could be obtained (Entra ID / managed identity endpoint failed)."""


STATUS_CLASSES: dict[int, type[DatabricksError]] = {
    400: BadRequest,
    401: Unauthenticated,
    403: PermissionDenied,
    404: NotFound,
    409: ResourceConflict,
    429: TooManyRequests,
    499: Cancelled,
    500: InternalError,
    501: Unimplemented,
    502: BadGateway,
    503: TemporarilyUnavailable,
    504: DeadlineExceeded,
}

ERROR_CODE_CLASSES: dict[str, type[DatabricksError]] = {
    "INVALID_PARAMETER_VALUE": InvalidParameterValue,
    "INVALID_STATE": InvalidState,
    "MALFORMED_REQUEST": MalformedRequest,
    "RESOURCE_DOES_NOT_EXIST": ResourceDoesNotExist,
    "ABORTED": Aborted,
    "ALREADY_EXISTS": AlreadyExists,
    "RESOURCE_ALREADY_EXISTS": ResourceAlreadyExists,
    "REQUEST_LIMIT_EXCEEDED": RequestLimitExceeded,
    "RESOURCE_EXHAUSTED": ResourceExhausted,
    "TEMPORARILY_UNAVAILABLE": TemporarilyUnavailable,
    "UNKNOWN": Unknown,
    "DATA_LOSS": DataLoss,
    "PERMISSION_DENIED": PermissionDenied,
    "UNAUTHENTICATED": Unauthenticated,
}


@dataclass(frozen=True)
class _Override:
    """A known answer whose status/code misstate what happened (databricks-sdk-py errors/overrides.py)."""

    path: re.Pattern[str]
    status: int | None
    error_code: str | None
    message: re.Pattern[str]
    error: type[DatabricksError]


OVERRIDES: tuple[_Override, ...] = (
    # A missing job, run or cluster comes back as 400 INVALID_PARAMETER_VALUE "... does not exist".
    _Override(re.compile(r"^/api/2\.\d/clusters/get"), 400, "INVALID_PARAMETER_VALUE",
              re.compile(r"Cluster .* does not exist"), ResourceDoesNotExist),
    _Override(re.compile(r"^/api/2\.\d/jobs/get"), 400, "INVALID_PARAMETER_VALUE",
              re.compile(r"Job .* does not exist"), ResourceDoesNotExist),
    _Override(re.compile(r"^/api/2\.\d/jobs/runs/"), 400, "INVALID_PARAMETER_VALUE",
              re.compile(r"Run .* does not exist"), ResourceDoesNotExist),
    # The control plane's own throttle; the SDK retries it whatever the status says.
    _Override(re.compile(r""), None, None,
              re.compile(r"RPC token bucket limit has been exceeded"), RequestLimitExceeded),
)

# Refusals Databricks' own clients retry, as data: error codes (Airflow provider: 400 COULD_NOT_ACQUIRE_LOCK) and
# message texts (databricks-sdk-py `_is_retryable`; the RPC throttle has its own override above).
RETRYABLE_ERROR_CODES = frozenset({"COULD_NOT_ACQUIRE_LOCK"})
RETRYABLE_MESSAGES = (
    "com.databricks.backend.manager.util.UnknownWorkerEnvironmentException",
    "does not have any associated worker environments",
    "There is no worker environment with id",
    "Unknown worker environment",
    "ClusterNotReadyException",
    "Unexpected error",
    "Please try again later or try a faster operation.",
)

_PLAIN_ERROR = re.compile(r"^([A-Z][A-Z_]+): (.*)$", re.DOTALL)
_HTML_PRE = re.compile(r"<pre>(.*?)</pre>", re.DOTALL | re.IGNORECASE)
_HTML_TITLE = re.compile(r"<title>(.*?)</title>", re.DOTALL | re.IGNORECASE)
_MAX_MESSAGE = 2000


def parse_error_body(body: bytes | str | None) -> tuple[str | None, str, list[Any]]:
    """(error_code, message, details) from a JSON error body, a plain `CODE: message` or an HTML gateway page."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else (body or "")
    text = text.strip()
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        code = data.get("error_code")
        # Older endpoints answer {"error": "..."}; SCIM-style ones {"detail": "..."}.
        message = data.get("message") or data.get("error") or data.get("detail") or text
        details = data.get("details")
        return (str(code) if code else None), str(message)[:_MAX_MESSAGE], details if isinstance(details, list) else []
    if match := _PLAIN_ERROR.match(text):
        return match.group(1), match.group(2).strip()[:_MAX_MESSAGE], []
    if match := _HTML_PRE.search(text) or _HTML_TITLE.search(text):
        return None, " ".join(match.group(1).split())[:_MAX_MESSAGE], []
    return None, (text or "empty response body")[:_MAX_MESSAGE], []


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (integer seconds or an HTTP date), read by urllib3's own parser;
    None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    try:
        return float(_RETRY_AFTER_READER.parse_retry_after(value))
    except InvalidHeader:
        return None


# Only its parser is used; retry_after_max is raised so a long wish is reported as it is (the client caps it).
_RETRY_AFTER_READER = Retry(0, retry_after_max=7 * 24 * 3600)


def is_retryable_refusal(status: int, error_code: str | None, message: str) -> bool:
    """True for the refusals Databricks' SDK and the Airflow provider retry (see RETRYABLE_*)."""
    if status >= 500 or status == 429:  # already transient (and a 5xx may have acted): keep their own class
        return False
    return error_code in RETRYABLE_ERROR_CODES or any(text in message for text in RETRYABLE_MESSAGES)


def error_class(status: int, error_code: str | None, message: str, path: str = "") -> type[DatabricksError]:
    """The class for an HTTP error: an override, else the error_code's class, else the status's class."""
    for override in OVERRIDES:
        if (
            (override.status is None or override.status == status)
            and (override.error_code is None or override.error_code == error_code)
            and override.path.search(path)
            and override.message.search(message)
        ):
            return override.error
    if is_retryable_refusal(status, error_code, message):
        return RetryableRefusal
    by_status = STATUS_CLASSES.get(status) or (InternalError if status >= 500 else BadRequest)
    by_code = ERROR_CODE_CLASSES.get(error_code or "")
    # The code is more specific, but it must not turn a retryable status into a permanent error or back.
    if by_code and issubclass(by_code, TransientError) == issubclass(by_status, TransientError):
        return by_code
    return by_status


def error_from_response(
    status: int,
    body: bytes | str | None,
    headers: dict[str, str] | Any = None,
    *,
    method: str | None = None,
    path: str = "",
) -> DatabricksError:
    """The typed error for one non-2xx answer."""
    error_code, message, details = parse_error_body(body)
    retry_after = parse_retry_after((headers or {}).get("Retry-After"))
    cls = error_class(status, error_code, message, path)
    return cls(
        message, status=status, error_code=error_code, details=details,
        retry_after=retry_after, method=method, path=path,
    )
