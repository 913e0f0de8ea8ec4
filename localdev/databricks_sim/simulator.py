"""DatabricksSimulator: a local Databricks workspace over HTTP, scripted from Python by tests and the demo.

    sim = DatabricksSimulator(token="dapi-sim"); url = sim.start()
    job_id = sim.add_job("nightly_sales_etl", tasks=[...], job_clusters=[...])
    run_id = sim.fail_run(job_id, failures={"transform": TaskFailure(error="...")})
    sim.script_repair(run_id, outcome="success")     # how the next repair of that run ends
    sim.throttle(times=2, retry_after=0)              # the next two requests get 429

Fault injection (see faults.py for every kind):
    sim.inject("lost_drop", path="runs/repair", times=1)          # the repair happens, its answer is lost
    sim.inject(["throttle", "error", "stall", "lost_500"], fraction=0.2, seed=7, stall_s=1.5)  # 20% of all
    sim.clear_faults()
    sim.request_count("jobs/runs/repair", "POST")   # requests received (faulted ones included)
    sim.applied_count("jobs/runs/repair")           # requests that took effect (lost answers included)
    sim.peak_rate(window_s=1.0)                     # most requests received within one second
Out of process (`python -m localdev.databricks_sim`), the same through admin routes, with the bearer token:
    POST /sim/faults {"kinds": [...], "path": ..., "method": ..., "fraction": ..., "times": ..., "seed": ...,
                      "retry_after": ..., "stall_s": ...}       -> the rule
    POST /sim/faults/clear    GET /sim/stats  (received / applied / injected per endpoint, rules, peak_rate)
    POST /sim/stats/reset
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from localdev.databricks_sim.errors import ApiError, invalid
from localdev.databricks_sim.faults import FaultPlan, FaultRule
from localdev.databricks_sim.model import JobRun, Outcome, TaskFailure, cluster_json, run_json
from localdev.databricks_sim.server import SimHTTPServer
from localdev.databricks_sim.shapes import legacy_overrides
from localdev.databricks_sim.state import Workspace

log = logging.getLogger(__name__)

_DEFAULT_FAULTS = {
    429: ("REQUEST_LIMIT_EXCEEDED", "Too many requests. Please wait a moment and try again."),
    500: ("INTERNAL_ERROR", "Internal error. Please try again later."),
    503: ("TEMPORARILY_UNAVAILABLE", "The service is temporarily unavailable. Please try again later."),
}
# Gateways in front of a workspace answer these with an HTML page, not the JSON error body.
_GATEWAY_PAGES = {
    502: "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>",
    504: "<html><head><title>504 Gateway Time-out</title></head><body><center><h1>504 Gateway Time-out</h1></center></body></html>",
}


class RecordedRequest(NamedTuple):
    """One request as the simulator received it (before faults and auth)."""

    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any]


@dataclass
class Fault:
    """An answer injected instead of the real one (or a delay before it)."""

    status: int | None
    error_code: str | None
    message: str
    retry_after: float | None
    delay: float
    path: str | None
    body: str | None
    remaining: int


class DatabricksSimulator:
    """A Databricks workspace on 127.0.0.1: Jobs API 2.1/2.2 + clusters/get, bearer auth, scripted failures."""

    def __init__(
        self,
        token: str = "dapi-sim",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        page_size: int = 100,
        workspace_id: str = "1234567890123456",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._token = token
        self.tokens = {token}
        self.page_size = page_size  # Jobs API 2.2 pages arrays 100 at a time; lower it to exercise pagination
        self.workspace_id = workspace_id
        self.workspace = Workspace(clock)
        self.workspace.on_run_finished = self._run_finished
        self._address = (host, port)
        self._server: SimHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self.faults = FaultPlan()
        self._webhook: tuple[str, str | None, str | None] | None = None
        self._deliveries: list[dict[str, Any]] = []
        self._senders: list[threading.Thread] = []

    # --- Life cycle -------------------------------------------------------------------------------------

    def start(self) -> str:
        """Listen (port 0: a free one) and serve in a background thread; returns the base URL."""
        self._server = SimHTTPServer(self._address, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="databricks-sim", daemon=True
        )
        self._thread.start()
        log.info("Databricks simulator listening", extra={"url": self.url})
        return self.url

    @property
    def url(self) -> str:
        if self._server is None:
            return "http://127.0.0.1:0"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def reset(self) -> None:
        """Back to an empty workspace: no jobs, runs, scripts, faults, logged requests, extra tokens or webhook
        target; page size 100, reruns terminal at once."""
        self.workspace.reset()
        self.page_size = 100
        self.tokens = {self._token}
        with self._lock:
            self._requests.clear()
            self._faults.clear()
            self._deliveries.clear()
            self._webhook = None
        self.faults.clear()
        self.faults.reset_counts()

    def __enter__(self) -> DatabricksSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- Jobs and runs ----------------------------------------------------------------------------------

    def add_job(
        self,
        name: str,
        tasks: list[dict[str, Any]],
        *,
        job_clusters: Iterable[dict[str, Any]] = (),
        tags: dict[str, str] | None = None,
        email_notifications: dict[str, Any] | None = None,
        parameters: Iterable[dict[str, Any]] = (),
        owner: str = "data-platform@contoso.example",
        job_id: int | None = None,
        **settings: Any,
    ) -> int:
        """Create a job (settings in Jobs API shape); returns its id."""
        full = {
            "name": name, "tasks": list(tasks), "job_clusters": list(job_clusters), "tags": tags or {},
            "email_notifications": email_notifications or {}, "parameters": list(parameters),
            "max_concurrent_runs": 1, "format": "MULTI_TASK", "queue": {"enabled": True}, **settings,
        }
        with self.workspace.lock:
            return self.workspace.add_job({k: v for k, v in full.items() if v not in ({}, [])}, creator=owner,
                                          job_id=job_id)

    def fail_run(
        self,
        job_id: int,
        failures: dict[str, TaskFailure],
        *,
        job_parameters: dict[str, str] | None = None,
        trigger: str = "PERIODIC",
        duration_s: float = 600.0,
        overriding_parameters: dict[str, Any] | None = None,
    ) -> int:
        """A finished run of `job_id` in which each task of `failures` failed (downstream: UPSTREAM_FAILED).

        A for_each task's failure may be a ForEachFailure (by iteration); a run_job task's failure is its child
        run's. `overriding_parameters`: legacy run-now parameters ({"notebook_params": {...}, ...})."""
        with self.workspace.lock:
            self.workspace.tick()
            unknown = set(failures) - {t["task_key"] for t in self.workspace.job(job_id)["settings"]["tasks"]}
            if unknown:
                raise KeyError(f"job {job_id} has no task {sorted(unknown)}")
            run = self.workspace.start_job_run(
                job_id, outcome=dict(failures), trigger=trigger, job_parameters=job_parameters,
                immediate=True, duration_ms=int(duration_s * 1000),
                overriding=legacy_overrides(overriding_parameters or {}),
            )
            return run.run_id

    def succeed_run(self, job_id: int, *, trigger: str = "PERIODIC", duration_s: float = 300.0) -> int:
        """A finished successful run of `job_id`."""
        with self.workspace.lock:
            self.workspace.tick()
            run = self.workspace.start_job_run(job_id, outcome="success", trigger=trigger, immediate=True,
                                               duration_ms=int(duration_s * 1000))
            return run.run_id

    def script_repair(self, target: int, outcome: Outcome = "success", *, times: int = 1) -> None:
        """How the next `times` repairs of run `target` (or reruns/run-nows of job `target`) end.

        outcome: "success"; a TaskFailure (every task that failed before fails again with it); {task_key:
        TaskFailure}; or a callable(RerunContext) returning one of those (see `succeed_if_resized`).
        Unscripted reruns succeed.
        """
        with self.workspace.lock:
            self.workspace.script(target, outcome, times)

    @property
    def rerun_seconds(self) -> float:
        """How long a repair or run-now stays RUNNING (0: terminal on the next request)."""
        return self.workspace.rerun_seconds

    @rerun_seconds.setter
    def rerun_seconds(self, seconds: float) -> None:
        self.workspace.rerun_seconds = seconds

    def finish_runs(self) -> None:
        """End every running repair or run now, as scripted."""
        with self.workspace.lock:
            for run in list(self.workspace.runs.values()):
                if run.completes_at is not None:
                    self.workspace.finish_run(run)

    def advance(self, seconds: float) -> None:
        """Move the workspace clock forward (run times, runs/list windows, rerun completion)."""
        with self.workspace.lock:
            self.workspace.offset_s += seconds
            self.workspace.tick()

    # --- Reading state for assertions --------------------------------------------------------------------

    def job(self, job_id: int) -> dict[str, Any]:
        """jobs/get as JSON, unpaginated."""
        with self.workspace.lock:
            return copy.deepcopy(self.workspace.job(job_id))

    def run(self, run_id: int) -> dict[str, Any]:
        """runs/get?include_history=true as JSON, unpaginated."""
        with self.workspace.lock:
            self.workspace.tick()
            run, _ = self.workspace.find_run(run_id)
            return run_json(run, self.url, self.workspace_id, include_history=True)

    def task_parameters(self, run_id: int) -> dict[str, Any]:
        """task_key -> the parameters the newest attempt of each task ran with (after legacy overrides)."""
        with self.workspace.lock:
            run, _ = self.workspace.find_run(run_id)
            return {key: copy.deepcopy(task.parameters) for key, task in run.latest_by_key().items()}

    def cluster(self, cluster_id: str) -> dict[str, Any]:
        """clusters/get as JSON."""
        with self.workspace.lock:
            return cluster_json(self.workspace.clusters[cluster_id])

    # --- Faults and the request log ---------------------------------------------------------------------

    def throttle(self, times: int = 1, *, retry_after: float | None = 0, path: str | None = None) -> None:
        """Answer the next `times` requests (to paths containing `path`) with 429 and Retry-After."""
        self.fail_with(429, times=times, retry_after=retry_after, path=path)

    def fail_with(
        self,
        status: int = 503,
        *,
        times: int = 1,
        error_code: str | None = None,
        message: str | None = None,
        retry_after: float | None = None,
        path: str | None = None,
        body: str | None = None,
    ) -> None:
        """Answer the next `times` matching requests with `status` (JSON error body; 502/504 an HTML page)."""
        code, text = _DEFAULT_FAULTS.get(status, (None, f"HTTP {status}"))
        if body is None and error_code is None and status in _GATEWAY_PAGES:
            body = _GATEWAY_PAGES[status]
        fault = Fault(status, error_code or code or "UNKNOWN", message or text, retry_after, 0.0, path, body, times)
        with self._lock:
            self._faults.append(fault)

    def stall(self, seconds: float, *, times: int = 1, path: str | None = None) -> None:
        """Hold the next `times` matching requests for `seconds`, then process them normally."""
        with self._lock:
            self._faults.append(Fault(None, None, "", None, seconds, path, None, times))

    def inject(
        self,
        kinds: str | Iterable[str],
        *,
        path: str | None = None,
        method: str | None = None,
        fraction: float = 1.0,
        times: int | None = None,
        seed: int = 0,
        retry_after: float = 1.0,
        stall_s: float = 2.0,
    ) -> FaultRule:
        """Inject faults (faults.py: throttle, throttle_bare, error, unavailable, stall, lost_drop, lost_500,
        lost_stall, lock, unexpected, faster) into `fraction` of the requests whose path contains `path`
        (None: all), at most `times` of them; with several kinds each hit picks one. Seeded, deterministic."""
        return self.faults.add(kinds, path=path, method=method, fraction=fraction, times=times, seed=seed,
                               retry_after=retry_after, stall_s=stall_s)

    def clear_faults(self) -> None:
        """Remove every injection rule and one-shot fault (the counters stay)."""
        self.faults.clear()
        with self._lock:
            self._faults.clear()

    def request_count(self, op: str, method: str | None = None) -> int:
        """Requests received for `op` ("jobs/runs/repair"), faulted ones included."""
        return _count(self.faults.received, op, method)

    def applied_count(self, op: str, method: str | None = None) -> int:
        """Requests for `op` that reached the workspace and succeeded, including those whose answer was lost."""
        return _count(self.faults.applied, op, method)

    def peak_rate(self, window_s: float = 1.0) -> int:
        """The most API requests received within any `window_s` seconds."""
        return self.faults.peak_rate(window_s)

    def allow_token(self, token: str) -> None:
        """Accept one more bearer token (for example the fake Entra token of a test)."""
        self.tokens.add(token)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path_suffix: str, method: str | None = None) -> list[RecordedRequest]:
        """The logged requests whose path ends with `path_suffix`."""
        return [r for r in self.requests if r.path.endswith(path_suffix) and (method is None or r.method == method)]

    # --- Webhooks ---------------------------------------------------------------------------------------

    def send_webhooks_to(self, url: str, *, username: str | None = None, password: str | None = None) -> None:
        """POST the documented jobs.on_failure payload there whenever a run of a job with
        webhook_notifications.on_failure ends unsuccessfully (Basic auth when a username is given)."""
        with self._lock:
            self._webhook = (url, username, password)

    @property
    def webhook_deliveries(self) -> list[dict[str, Any]]:
        """Each webhook sent: payload and answer status (or error)."""
        with self._lock:
            return list(self._deliveries)

    def flush_webhooks(self, timeout: float = 10.0) -> None:
        """Wait until every webhook started so far has been delivered (or failed)."""
        with self._lock:
            senders, self._senders = self._senders, []
        for sender in senders:
            sender.join(timeout)

    # --- Called by the server and the workspace ----------------------------------------------------------

    def record(self, method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> None:
        with self._lock:
            self._requests.append(RecordedRequest(method, path, query, body))

    def take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and (fault.path is None or fault.path in path):
                    fault.remaining -= 1
                    return fault
            return None

    def admin(self, method: str, op: str, body: dict[str, Any]) -> dict[str, Any]:
        """The /sim/ routes: fault rules and counters for a simulator in another process."""
        if (method, op) == ("POST", "faults"):
            options = {k: body[k] for k in ("path", "method", "fraction", "times", "seed", "retry_after", "stall_s")
                       if body.get(k) is not None}
            try:
                return self.inject(body.get("kinds") or [], **options).to_json()
            except (TypeError, ValueError) as exc:
                raise invalid(str(exc)) from exc
        if (method, op) == ("POST", "faults/clear"):
            self.clear_faults()
            return {}
        if (method, op) == ("GET", "stats"):
            return {**self.faults.stats(), "peak_rate": self.peak_rate()}
        if (method, op) == ("POST", "stats/reset"):
            self.faults.reset_counts()
            return {}
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No admin route '{method} /sim/{op}'")

    def check_auth(self, header: str | None) -> ApiError | None:
        if not header or not header.startswith("Bearer "):
            return ApiError(401, "UNAUTHENTICATED", "Credential was not sent or was of an unsupported type for this API.")
        if header[len("Bearer "):] not in self.tokens:
            return ApiError(403, "PERMISSION_DENIED", "Invalid access token.")
        return None

    def _run_finished(self, run: JobRun) -> None:
        # Called under the workspace lock: deliver from a thread so the API answer is never held up.
        target = self._webhook
        if target is None or run.job_id is None or run.result_state in ("SUCCESS", "SUCCESS_WITH_FAILURES"):
            return
        settings = self.workspace.jobs.get(run.job_id, {}).get("settings", {})
        if not settings.get("webhook_notifications", {}).get("on_failure"):
            return
        if run.result_state == "CANCELED" and settings.get("notification_settings", {}).get("no_alert_for_canceled_runs"):
            return
        payload = {
            "event_type": "jobs.on_failure", "workspace_id": self.workspace_id,
            "run": {"run_id": str(run.run_id)}, "job": {"job_id": str(run.job_id), "name": settings.get("name", "")},
        }
        sender = threading.Thread(target=self._deliver, args=(target, payload), daemon=True)
        with self._lock:
            self._senders.append(sender)
        sender.start()

    def _deliver(self, target: tuple[str, str | None, str | None], payload: dict[str, Any]) -> None:
        url, username, password = target
        request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        if username:
            basic = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            request.add_header("Authorization", f"Basic {basic}")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback URL from the test
                result: dict[str, Any] = {"payload": payload, "status": answer.status}
        except urllib.error.HTTPError as exc:
            result = {"payload": payload, "status": exc.code}
        except OSError as exc:
            result = {"payload": payload, "error": str(exc)}
        with self._lock:
            self._deliveries.append(result)


def _count(counter: Any, op: str, method: str | None) -> int:
    op = op.strip("/")
    total = 0
    for key, n in counter.items():
        verb, _, seen = key.partition(" ")
        if (seen == op or seen.endswith("/" + op)) and method in (None, verb):
            total += n
    return total
