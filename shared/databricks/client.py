"""The Jobs API over `requests`: timeouts, retries that explain themselves, typed errors, 2.2 pagination.

Retry policy (urllib3 `Retry` mounted on requests' HTTPAdapter; the machinery is in retry.py):
- 429 and 503 mean the server refused before doing anything, so every call is retried, after `Retry-After`
  seconds (1 s when absent). A Retry-After above `max_retry_after` is not slept through inside a Function:
  TooManyRequests is raised at once and the queue retries the message later.
- 500/502/504, read timeouts and dropped connections are ambiguous: the server may have acted. They are
  retried, with exponential backoff and jitter, only where repeating is harmless: GETs, run-now (it carries an
  idempotency_token) and runs/cancel. `runs/repair` and `jobs/update` are not retried on them: a repeated
  repair would hit "run in progress" (INVALID_STATE) and could be mistaken for "cannot be repaired", or act
  twice. Their transient error goes up instead and the caller reads Databricks back (actions.py): a repair
  that did happen shows in repair_history, an update in the job cluster's spec.
- Connection failures before the request was sent are always retried.
- Refusals Databricks' own clients retry whatever their status (400 COULD_NOT_ACQUIRE_LOCK, "Unexpected error",
  "Please try again later ...": errors.RETRYABLE_*) raise RetryableRefusal, a TransientError. Where repeating is
  harmless they are retried here, with the same backoff and budget; a repair or jobs/update is not repeated (it
  goes up as a TransientError, and the caller reads Databricks back before anything else), never an email.
- The total wait of one call is capped by `budget`; past it the last error is raised.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import requests

from shared.databricks.auth import EntraToken, OAuthM2MToken, PatToken, TokenProvider
from shared.databricks.errors import (
    DatabricksConnectionError,
    DatabricksError,
    DatabricksTimeout,
    InternalError,
    RetryableRefusal,
    Unauthenticated,
    error_from_response,
)
from shared.databricks.models import (
    LEGACY_PARAMETER_FIELDS,
    ClusterInfo,
    Job,
    Run,
    RunOutput,
    RunsPage,
    RunSummary,
)
from shared.databricks.limiter import TokenBucket, WorkspaceBuckets
from shared.databricks.retry import RetryPolicy, adapter
from shared.exceptions import ConfigError
from shared.http_session import ProxySession
from shared.settings import WorkspaceConfig

log = logging.getLogger(__name__)

JOBS = "/api/2.2/jobs"
CLUSTERS = "/api/2.1/clusters"
RUNS_LIST_LIMIT = 25  # the largest page runs/list accepts
MAX_TOKEN_LENGTH = 64  # run-now idempotency_token
MAX_PAGES = 1000  # a server that keeps returning next_page_token must not loop forever
# Paths where repeating a request after an ambiguous failure could act twice (see the module docstring).
NOT_IDEMPOTENT_PATHS = (f"{JOBS}/runs/repair", f"{JOBS}/update")
# Arrays that 2.2 pages 100 at a time; the pages are merged into one object.
RUN_PAGED_ARRAYS = ("tasks", "job_clusters", "job_parameters", "repair_history", "iterations")
JOB_SETTINGS_PAGED_ARRAYS = ("tasks", "job_clusters", "parameters", "environments")
class _BearerAuth(requests.auth.AuthBase):
    def __init__(self, provider: TokenProvider) -> None:
        self.provider = provider

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self.provider.authorization()
        return request


class DatabricksClient:
    """JobsApi for one workspace over HTTP (Jobs API 2.2, Clusters API 2.1)."""

    def __init__(
        self,
        host: str,
        auth: TokenProvider,
        *,
        timeout: float = 30.0,
        connect_timeout: float | None = None,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        limit: TokenBucket | WorkspaceBuckets | None = None,
    ) -> None:
        self.host = host.rstrip("/")
        # The workspace's request limit (shared.databricks.limiter): every request and every retry takes a token.
        self._throttle = limit.acquire if limit is not None else None
        self._auth = auth
        self._timeout = (connect_timeout or min(timeout, 10.0), timeout)
        self._retry = retry
        self._sleep = sleep
        self._session = ProxySession()  # proxies from the environment read once, not on every call
        self._session.auth = _BearerAuth(auth)
        self._session.headers["User-Agent"] = "databricks-ai-agent"
        # requests picks the adapter with the longest matching prefix, so these paths get the stricter one.
        self._session.mount(self.host, adapter(retry, sleep, idempotent=True, throttle=self._throttle))
        for path in NOT_IDEMPOTENT_PATHS:
            self._session.mount(self.host + path, adapter(retry, sleep, idempotent=False, throttle=self._throttle))

    def __repr__(self) -> str:
        return f"DatabricksClient(host={self.host!r}, auth={self._auth!r})"

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()

    # --- JobsApi ----------------------------------------------------------------------------------------

    def get_run(self, run_id: int) -> Run:
        """`runs/get?include_history=true`, every page of tasks, job clusters, parameters and history merged."""
        params = {"run_id": run_id, "include_history": "true"}
        return Run.model_validate(_merge_pages(self._pages(f"{JOBS}/runs/get", params), RUN_PAGED_ARRAYS))

    def get_run_output(self, task_run_id: int) -> RunOutput:
        """`runs/get-output` for one task run."""
        return RunOutput.model_validate(self._call("GET", f"{JOBS}/runs/get-output", params={"run_id": task_run_id}))

    def get_cluster(self, cluster_id: str) -> ClusterInfo:
        """`clusters/get`: the cluster's state and termination reason."""
        return ClusterInfo.model_validate(self._call("GET", f"{CLUSTERS}/get", params={"cluster_id": cluster_id}))

    def get_job(self, job_id: int) -> Job:
        """`jobs/get`, every page of the settings' tasks, job clusters and parameters merged."""
        pages = self._pages(f"{JOBS}/get", {"job_id": job_id})
        first = next(pages)
        settings = _merge_pages(
            (first.get("settings", {}), *(page.get("settings", {}) for page in pages)), JOB_SETTINGS_PAGED_ARRAYS
        )
        return Job.model_validate({**_without_paging(first), "settings": settings})

    def list_runs(
        self,
        *,
        start_time_from: int,
        start_time_to: int | None = None,
        completed_only: bool = True,
        job_id: int | None = None,
    ) -> Iterator[RunSummary]:
        """`runs/list` across every page, newest first; times in epoch ms."""
        params: dict[str, Any] = {"start_time_from": start_time_from, "limit": RUNS_LIST_LIMIT}
        if start_time_to is not None:
            params["start_time_to"] = start_time_to
        if completed_only:
            params["completed_only"] = "true"
        if job_id is not None:
            params["job_id"] = job_id
        for page in self._pages(f"{JOBS}/runs/list", params):
            for raw in page.get("runs", []):
                yield RunSummary.model_validate(raw)

    def list_runs_page(
        self,
        *,
        start_time_from: int,
        start_time_to: int | None = None,
        page_token: str | None = None,
        completed_only: bool = True,
        run_type: str | None = "JOB_RUN",
    ) -> RunsPage:
        """One page of `runs/list` (25 runs, newest first), asking only for what the poller needs: finished
        runs (`completed_only`) of jobs (`run_type=JOB_RUN`), started inside the window."""
        params: dict[str, Any] = {"start_time_from": start_time_from, "limit": RUNS_LIST_LIMIT}
        if start_time_to is not None:
            params["start_time_to"] = start_time_to
        if completed_only:
            params["completed_only"] = "true"
        if run_type:
            params["run_type"] = run_type
        if page_token:
            params["page_token"] = page_token
        page = self._call("GET", f"{JOBS}/runs/list", params=params)
        more = page.get("has_more") is not False and page.get("next_page_token")
        return RunsPage(runs=[RunSummary.model_validate(r) for r in page.get("runs", [])],
                        next_page_token=page.get("next_page_token") if more else None)

    def repair_run(
        self, run_id: int, *, latest_repair_id: int | None, job_parameters: dict[str, str] | None = None,
        **legacy_parameters: Any,
    ) -> int:
        """`runs/repair` of every failed task; returns the repair id. Not retried on ambiguous failures.

        legacy_parameters: notebook_params, python_params ... (models.LEGACY_PARAMETER_FIELDS), re-sent as the
        run was started with them, or the rerun would fall back to the job's base values.
        """
        body: dict[str, Any] = {"run_id": run_id, "rerun_all_failed_tasks": True}
        if latest_repair_id is not None:  # required from the second repair on
            body["latest_repair_id"] = latest_repair_id
        if job_parameters is not None:  # without them parameters may not resolve in the rerun (reference §8)
            body["job_parameters"] = job_parameters
        body.update(_legacy(legacy_parameters))
        return int(self._call("POST", f"{JOBS}/runs/repair", json=body)["repair_id"])

    def run_now(
        self, job_id: int, *, idempotency_token: str, job_parameters: dict[str, str] | None = None,
        **legacy_parameters: Any,
    ) -> int:
        """`run-now` with an idempotency token (<= 64 chars); the same token returns the same run."""
        if not idempotency_token or len(idempotency_token) > MAX_TOKEN_LENGTH:
            raise ValueError(f"idempotency_token must be 1-{MAX_TOKEN_LENGTH} characters")
        body: dict[str, Any] = {"job_id": job_id, "idempotency_token": idempotency_token}
        if job_parameters is not None:
            body["job_parameters"] = job_parameters
        body.update(_legacy(legacy_parameters))
        return int(self._call("POST", f"{JOBS}/run-now", json=body)["run_id"])

    def update_job_cluster(self, job_id: int, job_cluster_key: str, new_cluster: dict[str, Any]) -> None:
        """`jobs/update` of one `job_clusters[]` entry (merged by key server-side; the rest is untouched)."""
        new_settings = {"job_clusters": [{"job_cluster_key": job_cluster_key, "new_cluster": new_cluster}]}
        self._call("POST", f"{JOBS}/update", json={"job_id": job_id, "new_settings": new_settings})

    def cancel_run(self, run_id: int) -> None:
        """`runs/cancel` (asynchronous on the Databricks side)."""
        self._call("POST", f"{JOBS}/runs/cancel", json={"run_id": run_id})

    # --- HTTP -------------------------------------------------------------------------------------------

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Each page of a paginated GET, following next_page_token."""
        seen: set[str] = set()
        page_params = dict(params)
        for _ in range(MAX_PAGES):
            page = self._call("GET", path, params=page_params)
            yield page
            token = page.get("next_page_token")
            if not token or page.get("has_more") is False:
                return
            if token in seen:
                raise InternalError(f"pagination repeated page token {token!r}", method="GET", path=path)
            seen.add(token)
            page_params = {**params, "page_token": token}
        raise InternalError(f"more than {MAX_PAGES} pages", method="GET", path=path)

    def _call(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """One call; a retryable refusal is tried again (not on NOT_IDEMPOTENT_PATHS) within the policy."""
        waited, attempt, refreshed = 0.0, 0, False
        while True:
            try:
                return self._call_once(method, path, params=params, json=json)
            except Unauthenticated:
                # A 401 is refused before anything is done: an OAuth or Entra token revoked or expired early is
                # dropped and the call made once more with a new one (a PAT has nothing to renew).
                if refreshed or not hasattr(self._auth, "invalidate"):
                    raise
                self._auth.invalidate()
                refreshed = True
            except RetryableRefusal as exc:
                attempt += 1
                # Databricks' SDK waits min(10, attempt) s plus jitter between such tries.
                wait = min(self._retry.backoff_max, float(attempt)) + random.uniform(0, self._retry.jitter)  # noqa: S311
                if path in NOT_IDEMPOTENT_PATHS or attempt > self._retry.retries or waited + wait > self._retry.budget:
                    raise
                log.warning("retrying %s %s in %.1fs (attempt %d): Databricks refused for now: %s",
                            method, path, wait, attempt + 1, exc.message,
                            extra={"method": method, "path": path, "reason": exc.error_code or exc.message,
                                   "wait_s": wait})
                self._sleep(wait)
                waited += wait

    def _call_once(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        if self._throttle is not None:
            self._throttle(path)
        started = time.monotonic()
        try:
            response = self._session.request(method, self.host + path, params=params, json=json, timeout=self._timeout)
        except requests.Timeout as exc:
            raise DatabricksTimeout(f"no answer within {self._timeout[1]:g}s", method=method, path=path) from exc
        except requests.RequestException as exc:
            raise DatabricksConnectionError(
                f"could not reach the workspace: {type(exc).__name__}", method=method, path=path
            ) from exc
        elapsed_ms = int((time.monotonic() - started) * 1000)
        log.debug(
            "%s %s -> %s in %d ms", method, path, response.status_code, elapsed_ms,
            extra={"method": method, "path": path, "status": response.status_code, "elapsed_ms": elapsed_ms},
        )
        if response.status_code >= 400:
            raise error_from_response(response.status_code, response.content, response.headers, method=method, path=path)
        if not response.content:
            return {}
        try:
            data = response.json()
        except ValueError as exc:
            # A 200 that is not JSON is a login page or a proxy: the URL is probably not the workspace's.
            raise InternalError(
                f"answered {response.status_code} with a non-JSON body ({response.headers.get('Content-Type')})",
                status=response.status_code, method=method, path=path,
            ) from exc
        if not isinstance(data, dict):
            raise InternalError("answered with JSON that is not an object", method=method, path=path)
        return data


def _legacy(parameters: dict[str, Any]) -> dict[str, Any]:
    unknown = set(parameters) - set(LEGACY_PARAMETER_FIELDS)
    if unknown:
        raise ValueError(f"not a run parameter kind: {', '.join(sorted(unknown))}")
    return {name: value for name, value in parameters.items() if value is not None}


def _without_paging(page: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in page.items() if k not in ("next_page_token", "prev_page_token", "has_more")}


def _merge_pages(pages: Any, arrays: tuple[str, ...]) -> dict[str, Any]:
    """The first page, with each paged array extended by the same array of every later page."""
    merged: dict[str, Any] | None = None
    for page in pages:
        if merged is None:
            merged = _without_paging(page)
            for key in arrays:
                merged[key] = list(merged.get(key) or [])
            continue
        for key in arrays:
            merged[key].extend(page.get(key) or [])
    if merged is None:
        raise InternalError("no page returned")
    return {k: v for k, v in merged.items() if not (k in arrays and v == [])}


def build_jobs_api(
    workspace: WorkspaceConfig,
    *,
    timeout: float,
    pat_token: str | None = None,
    azure_client_id: str | None = None,
    retry: RetryPolicy = RetryPolicy(),
    client_secret: str | None = None,
    limit: TokenBucket | WorkspaceBuckets | None = None,
) -> DatabricksClient:
    """A client for `workspace`: PAT or OAuth M2M secret (given here, e.g. from Key Vault, or in the config),
    or Entra ID."""
    auth: TokenProvider
    if workspace.auth == "pat":
        token = pat_token or (workspace.pat_token.get_secret_value() if workspace.pat_token else None)
        if not token:
            raise ConfigError(f"workspace {workspace.url} uses PAT auth but no token was given")
        auth = PatToken(token)
    elif workspace.auth == "oauth-m2m":
        secret = client_secret or (workspace.client_secret.get_secret_value() if workspace.client_secret else None)
        if not secret or not workspace.client_id:
            raise ConfigError(f"workspace {workspace.url} uses OAuth M2M but no client id and secret were given")
        auth = OAuthM2MToken(workspace.url, workspace.client_id, secret, timeout=timeout)
    else:
        auth = EntraToken(client_id=azure_client_id)
    return DatabricksClient(workspace.url, auth, timeout=timeout, retry=retry, limit=limit)


__all__ = ["DatabricksClient", "DatabricksError", "RetryPolicy", "build_jobs_api"]
