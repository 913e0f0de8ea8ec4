"""DatabricksSimulator: a local Databricks workspace over HTTP, scripted from Python by tests and the demo.

    sim = DatabricksSimulator(token="dapi-sim"); url = sim.start()
    job_id = sim.add_job("nightly_sales_etl", tasks=[...], job_clusters=[...])
    run_id = sim.fail_run(job_id, failures={"transform": TaskFailure(error="...")})
    sim.script_repair(run_id, outcome="success")     # how the next repair of that run ends
    sim.throttle(times=2, retry_after=0)              # the next two requests get 429

Fault injection (see faults.py for every kind):
    sim.inject("lost_drop", path="runs/repair", times=1)          # the repair happens, its answer is lost
    sim.inject(["throttle", "error", "stall", "lost_500"], fraction=0.2, seed=7, stall_s=1.5)  # 20% of all
    sim.inject(faults.CHAOS, path="runs/repair", fraction=0.2)     # every refusal and every lost answer
    sim.limit_rate(20, path="run-now")              # 429 beyond 20 requests in any second
    sim.set_latency(0.1)                            # every API answer 100 ms late (path=...: only those)
    sim.clear_faults()
    sim.request_count("jobs/runs/repair", "POST")   # requests received (faulted ones included)
    sim.applied_count("jobs/runs/repair")           # requests that took effect (lost answers included)
    sim.peak_rate(window_s=1.0)                     # most requests received within one second
    sim.repair_count(run_id); sim.job_updates(job_id)   # what Databricks actually accepted ("0 double repairs")
A cloud outage (outage.py): every cluster launched in the next 120 s fails (CLOUD_PROVIDER_LAUNCH_FAILURE,
Azure SkuNotAvailable); scripted outcomes wait for the reruns after it:
    sim.start_outage(120); sim.outage()             # {"active": true, "seconds_left": ...}
    sim.trigger_run(job_id)                         # a scheduled run starting now (fails during the outage)
Job shapes, a busy workspace, OAuth:
    sim.fail_run(job, {"per_region": ForEachFailure({2: TaskFailure(...)})})   # a for_each iteration fails
    sim.fail_run(parent, {"call_child": TaskFailure(...)})   # a run_job task: its child run fails with it
    sim.fail_run(job, {...}, overriding_parameters={"notebook_params": {...}}); sim.task_parameters(run_id)
    sim.add_busy_runs(30_000)                       # cheap finished runs for runs/list paging
    sim.add_service_principal("id", "secret"); sim.oauth_token_lifetime_s = 5   # POST /oidc/v1/token
Out of process (`python -m localdev.databricks_sim`), the same through admin routes, with the bearer token:
    POST /sim/faults {"kinds": [...], "path": ..., "method": ..., "fraction": ..., "times": ..., "seed": ...,
                      "retry_after": ..., "stall_s": ...}       -> the rule
    POST /sim/faults/rate-limit {"per_s": 20, "path": "run-now"}
    POST /sim/latency {"seconds": 0.1, "path": null}
    POST /sim/faults/clear    GET /sim/stats  (received / applied / injected per endpoint, rules, peak_rate)
    POST /sim/stats/reset
    POST /sim/outage {"seconds": 120, "termination_code": "CLOUD_FAILURE", "reason": "CLOUD_PROVIDER_LAUNCH_FAILURE",
                      "type": "CLOUD_FAILURE", "azure_error_code": "SkuNotAvailable", "message": "..."}
                      (all but seconds optional; 0 ends it)      GET /sim/outage -> {"active": ..., "seconds_left"}
    POST /sim/trigger {"job_id": N}                 -> {"run_id"}: a scheduled run starting now
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from localdev.databricks_sim.controls import Fault, FaultControls
from localdev.databricks_sim.errors import ApiError
from localdev.databricks_sim.faults import FaultPlan
from localdev.databricks_sim.model import Outcome, TaskFailure, cluster_json, run_json
from localdev.databricks_sim.oauth import OAuthIssuer
from localdev.databricks_sim.outage import outage_from
from localdev.databricks_sim.server import SimHTTPServer
from localdev.databricks_sim.shapes import legacy_overrides
from localdev.databricks_sim.state import Workspace
from localdev.databricks_sim.webhooks import Webhooks

log = logging.getLogger(__name__)


class RecordedRequest(NamedTuple):
    """One request as the simulator received it (before faults and auth)."""

    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any]


class DatabricksSimulator(FaultControls, Webhooks):
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
        self.oauth = OAuthIssuer()
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
        self._latency = (0.0, None)
        self.oauth.reset()

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

    def add_busy_runs(self, count: int, *, job_id: int | None = None, within_s: float = 12 * 3600.0,
                      seed: int = 0) -> list[int]:
        """`count` finished successful runs started within the last `within_s` seconds, kept as tuples (30,000
        take well under a second); of `job_id`, or of a new one-task serverless job. Returns their run ids."""
        with self.workspace.lock:
            if job_id is None:
                job_id = self.add_job("busy_hourly_ingest", [{"task_key": "main", "environment_key": "default",
                                                              "notebook_task": {"notebook_path": "/Jobs/main"}}])
            name = self.workspace.job(job_id)["settings"].get("name", "")
            now = self.workspace.now_ms()
            return self.workspace.bulk.add(self.workspace._run_ids, job_id, name, count,
                                           now - int(within_s * 1000), now - 1000, seed)

    def trigger_run(self, job_id: int, *, trigger: str = "PERIODIC") -> int:
        """A run of `job_id` started now by the scheduler, finished at once: as scripted for the job (default
        success), or, during an outage, with the cluster launch failure. Its webhook goes out like any other."""
        with self.workspace.lock:
            self.workspace.tick()
            run = self.workspace.start_job_run(job_id, outcome=self.workspace.scripted(job_id), trigger=trigger,
                                               immediate=True)
            return run.run_id

    def start_outage(self, seconds: float, **cause: Any) -> dict[str, Any]:
        """From now, for `seconds` (workspace clock), every run, repair or run-now started that launches a cluster
        fails to launch it (outage.py; `cause`: termination_code, reason, type, azure_error_code, message or
        parameters). 0 ends it. Returns the outage as GET /sim/outage shows it."""
        with self.workspace.lock:
            now = self.workspace.now_ms()
            self.workspace.outage = outage_from({"seconds": seconds, **cause}, now)
            return self.workspace.outage.to_json(now)

    def outage(self) -> dict[str, Any]:
        """{"active": bool, "seconds_left", ...}: the current (or last) outage; {"active": false} when none."""
        with self.workspace.lock:
            outage = self.workspace.outage
            return outage.to_json(self.workspace.now_ms()) if outage is not None else {"active": False}

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

    def repair_count(self, run_id: int) -> int:
        """How many repairs Databricks accepted for `run_id` (its REPAIR history items)."""
        with self.workspace.lock:
            run, _ = self.workspace.find_run(run_id)
            return sum(1 for item in run.history if item.type == "REPAIR")

    def job_updates(self, job_id: int) -> list[dict[str, Any]]:
        """The new_settings of every jobs/update applied to `job_id`, oldest first (lost answers included)."""
        with self.workspace.lock:
            return [copy.deepcopy(new) for jid, new, _ in self.workspace.updates if jid == job_id]

    def cluster(self, cluster_id: str) -> dict[str, Any]:
        """clusters/get as JSON."""
        with self.workspace.lock:
            return cluster_json(self.workspace.clusters[cluster_id])

    # --- Auth and the request log --------------------------------------------------------------------------

    def add_service_principal(self, client_id: str, secret: str) -> None:
        """A service principal that may get OAuth M2M tokens from POST /oidc/v1/token."""
        self.oauth.principals[client_id] = secret

    @property
    def oauth_token_lifetime_s(self) -> int:
        """`expires_in` of the tokens issued from now on (3600 by default; on the workspace clock)."""
        return self.oauth.lifetime_s

    @oauth_token_lifetime_s.setter
    def oauth_token_lifetime_s(self, seconds: int) -> None:
        self.oauth.lifetime_s = int(seconds)

    @property
    def issued_tokens(self) -> list[str]:
        """Every OAuth access token issued so far, oldest first."""
        return list(self.oauth.issued)

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

    # --- Called by the server and the workspace ----------------------------------------------------------

    def record(self, method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> None:
        with self._lock:
            self._requests.append(RecordedRequest(method, path, query, body))

    def check_auth(self, header: str | None) -> ApiError | None:
        if not header or not header.startswith("Bearer "):
            return ApiError(401, "UNAUTHENTICATED", "Credential was not sent or was of an unsupported type for this API.")
        token = header[len("Bearer "):]
        if token in self.tokens:
            return None
        with self.workspace.lock:
            valid = self.oauth.check(token, self.workspace.now_ms())
        if valid is False:
            return ApiError(401, "UNAUTHENTICATED", "Token is expired.")
        if valid is None:
            return ApiError(403, "PERMISSION_DENIED", "Invalid access token.")
        return None


