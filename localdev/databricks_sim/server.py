"""The simulator's HTTP face: Jobs API 2.1/2.2 and Clusters API paths, bearer auth, error bodies, pagination.

One routing table maps (verb, path) to a small function; every function works on the Workspace under its lock.
Injected refusals (429, 500, 503, retryable 400s, a stall) are answered before authentication, as a gateway in
front would; "lost" faults let the route act first and then lose its answer (faults.py). The admin routes
under /sim/ (bearer auth, never faulted or counted) drive the same controls from another process.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from localdev.databricks_sim.errors import ApiError, invalid
from localdev.databricks_sim.faults import FaultPlan, Hit
from localdev.databricks_sim.listing import bulk_run_json, list_jobs, list_runs
from localdev.databricks_sim.model import RUN_FIELDS, cluster_json, run_json, task_json
from localdev.databricks_sim.oauth import DISCOVERY_PATHS, TOKEN_PATH, OAuthIssuer, discovery
from localdev.databricks_sim.shapes import legacy_overrides
from localdev.databricks_sim.state import Workspace


class SimulatorFace(Protocol):
    """What the server needs of the simulator (simulator.py implements it; no import back)."""

    workspace: Workspace
    workspace_id: str
    page_size: int
    faults: FaultPlan
    oauth: OAuthIssuer

    @property
    def url(self) -> str: ...

    def record(self, method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> None: ...

    def take_fault(self, path: str) -> Any: ...
    def latency_for(self, path: str) -> float: ...

    def check_auth(self, header: str | None) -> ApiError | None: ...

    def admin(self, method: str, op: str, body: dict[str, Any]) -> dict[str, Any]: ...


log = logging.getLogger(__name__)

_API_PATH = re.compile(r"^/api/(?P<version>2\.[012])/(?P<op>(?:jobs|clusters)/[a-z/-]+)$")
RUN_ARRAYS = ("tasks", "job_clusters", "job_parameters", "repair_history")
JOB_SETTINGS_ARRAYS = ("tasks", "job_clusters", "parameters", "environments")
MULTI_TASK_OUTPUT = (
    "Retrieving the output of runs with multiple tasks is not supported. "
    "Please retrieve the output of each individual task run instead."
)


class Request:
    """What a route function gets."""

    def __init__(self, sim: SimulatorFace, version: str, query: dict[str, str], body: dict[str, Any]) -> None:
        self.sim, self.version, self.query, self.body = sim, version, query, body
        self.ws = sim.workspace

    @property
    def paginated(self) -> bool:
        return self.version == "2.2"  # 2.1 returns whole arrays


def _get_run(req: Request) -> dict[str, Any]:
    bulk = req.ws.bulk.by_id.get(_int_or_none(req.query.get("run_id")))
    if bulk is not None:
        return bulk_run_json(bulk, req.ws.bulk.job_names.get(bulk.job_id, ""), req.sim.url, req.sim.workspace_id,
                             with_tasks=True)
    run, task = req.ws.find_run(req.query.get("run_id"))
    if task is not None:  # a task run read as a run; a for_each parent lists its iterations
        out = {**_task_as_run(req, run, task), "tasks": [task_json(task, run, req.sim.url, req.sim.workspace_id)]}
        if task.iterations is not None:
            out["iterations"] = [task_json(i, run, req.sim.url, req.sim.workspace_id) for i in task.iterations]
        return out
    include_history = req.query.get("include_history", "false").lower() == "true"
    data = run_json(run, req.sim.url, req.sim.workspace_id, include_history=include_history)
    return _page(req, data, data, RUN_ARRAYS, f"run:{run.run_id}") if req.paginated else data


def _get_output(req: Request) -> dict[str, Any]:
    run, task = req.ws.find_run(req.query.get("run_id"))
    if task is None:
        latest = list(run.latest_by_key().values())
        if len(latest) != 1:
            raise invalid(MULTI_TASK_OUTPUT)
        task = latest[0]
    out: dict[str, Any] = {"metadata": _task_as_run(req, run, task)}
    if task.child_run_id is not None:
        out["run_job_output"] = {"run_id": task.child_run_id}
    if task.failure is not None:
        out.update({k: v for k, v in (("error", task.failure.error), ("error_trace", task.failure.error_trace),
                                       ("logs", task.failure.logs)) if v})
    elif task.result_state == "SUCCESS":
        out.update(_success_output(req, task))
    return out


def _success_output(req: Request, task: Any) -> dict[str, Any]:
    spec = task.spec
    if "notebook_task" in spec:
        return {"notebook_output": {"result": "OK", "truncated": False}}
    if "sql_task" in spec:
        warehouse = spec["sql_task"].get("warehouse_id", "")
        return {"sql_output": {"query_output": {
            "warehouse_id": warehouse, "output_link": f"{req.sim.url}/sql/history?queryId={task.run_id}"}}}
    if "dbt_task" in spec:
        return {"dbt_output": {"artifacts_link": f"{req.sim.url}/dbt-artifacts/{task.run_id}.tar.gz"}}
    return {}


def _list_runs(req: Request) -> dict[str, Any]:
    return list_runs(req.ws.runs, req.ws.bulk, req.query, req.sim.url, req.sim.workspace_id)


def _get_job(req: Request) -> dict[str, Any]:
    job = json.loads(json.dumps(req.ws.job(req.query.get("job_id"))))
    if not req.paginated:
        return job
    return _page(req, job, job["settings"], JOB_SETTINGS_ARRAYS, f"job:{job['job_id']}")


def _list_jobs(req: Request) -> dict[str, Any]:
    return list_jobs(req.ws.jobs, req.query)


def _update_job(req: Request) -> dict[str, Any]:
    if "new_settings" not in req.body and "fields_to_remove" not in req.body:
        raise invalid("new_settings or fields_to_remove must be given.")
    req.ws.update_job(req.body.get("job_id"), req.body.get("new_settings") or {}, req.body.get("fields_to_remove") or [])
    return {}


def _run_now(req: Request) -> dict[str, Any]:
    token = req.body.get("idempotency_token")
    if token is not None and (not isinstance(token, str) or len(token) > 64):
        raise invalid("idempotency_token must be a string of at most 64 characters.")
    if token and token in req.ws.tokens:  # "exactly one run": the existing run is returned, whatever its state
        run = req.ws.runs[req.ws.tokens[token]]
        return {"run_id": run.run_id, "number_in_job": run.number_in_job}
    job = req.ws.job(req.body.get("job_id"))
    legacy = legacy_overrides(req.body)
    if legacy and req.body.get("job_parameters"):
        raise invalid("job_parameters cannot be used together with task-level parameters such as "
                      f"{sorted(legacy)[0]}.")
    run = req.ws.start_job_run(
        job["job_id"], outcome=req.ws.scripted(job["job_id"]), trigger="ONE_TIME",
        job_parameters=req.body.get("job_parameters"), only=req.body.get("only"), token=token, overriding=legacy,
    )
    return {"run_id": run.run_id, "number_in_job": run.number_in_job}


def _repair(req: Request) -> dict[str, Any]:
    run, _ = req.ws.find_run(req.body.get("run_id"))
    # The scripted outcome is taken only once the repair is accepted, so a rejected repair does not use it up.
    return {"repair_id": req.ws.repair(req.body, outcome=req.ws.scripted(run.run_id, run.job_id))}


def _submit(req: Request) -> dict[str, Any]:
    token = req.body.get("idempotency_token")
    if token and token in req.ws.tokens:
        return {"run_id": req.ws.tokens[token]}
    return {"run_id": req.ws.submit(req.body, outcome="success").run_id}


def _cancel(req: Request) -> dict[str, Any]:
    req.ws.cancel(req.body.get("run_id"))
    return {}


def _get_cluster(req: Request) -> dict[str, Any]:
    cluster_id = req.query.get("cluster_id")
    cluster = req.ws.clusters.get(cluster_id or "")
    if cluster is None:
        raise invalid(f"Cluster {cluster_id} does not exist")
    return cluster_json(cluster)


ROUTES: dict[tuple[str, str], Callable[[Request], dict[str, Any]]] = {
    ("GET", "jobs/get"): _get_job,
    ("GET", "jobs/list"): _list_jobs,
    ("POST", "jobs/update"): _update_job,
    ("POST", "jobs/run-now"): _run_now,
    ("GET", "jobs/runs/get"): _get_run,
    ("GET", "jobs/runs/get-output"): _get_output,
    ("GET", "jobs/runs/list"): _list_runs,
    ("POST", "jobs/runs/repair"): _repair,
    ("POST", "jobs/runs/submit"): _submit,
    ("POST", "jobs/runs/cancel"): _cancel,
    ("GET", "clusters/get"): _get_cluster,
}


def _task_as_run(req: Request, run: Any, task: Any) -> dict[str, Any]:
    data = task_json(task, run, req.sim.url, req.sim.workspace_id)
    as_run = {k: v for k, v in data.items() if k in RUN_FIELDS}
    return {**as_run, "job_id": run.job_id, "job_run_id": run.run_id, "run_name": task.task_key,
            "number_in_job": run.number_in_job, "original_attempt_run_id": task.run_id, "run_type": run.run_type,
            "trigger": run.trigger, "creator_user_name": run.creator_user_name}


def _page(req: Request, whole: dict[str, Any], container: dict[str, Any], arrays: tuple[str, ...], owner: str) -> dict:
    """Cut `container`'s arrays to one page of `sim.page_size`, as 2.2 does with 100."""
    size = req.sim.page_size
    number = _decode_token(req.query["page_token"], owner)["page"] if req.query.get("page_token") else 0
    more = False
    for name in arrays:
        items = container.get(name) or []
        chunk = items[number * size:(number + 1) * size]
        more = more or len(items) > (number + 1) * size
        if chunk:
            container[name] = chunk
        else:
            container.pop(name, None)
    if more:
        whole["next_page_token"] = _encode_token({"kind": owner, "page": number + 1})
    return whole


def _encode_token(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_token(token: str, kind: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError as exc:
        raise invalid(f"Invalid page token: {token}") from exc
    if not isinstance(data, dict) or data.get("kind") != kind:
        raise invalid(f"Invalid page token: {token}")
    return data


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class SimHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real workspace; every answer carries Content-Length
    disable_nagle_algorithm = True  # headers and body go out in two writes; without this, 40 ms per request
    server: SimHTTPServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        log.debug("sim: " + format, *args)

    def _handle(self, method: str) -> None:
        sim = self.server.sim
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw.strip() else {}
            malformed = None if isinstance(body, dict) else "the body is not a JSON object"
        except ValueError as exc:
            body, malformed = {}, str(exc)
        if split.path.startswith("/sim/"):
            self._admin(method, split.path[len("/sim/"):], body)
            return
        if split.path in DISCOVERY_PATHS and method == "GET":
            self._send_json(200, discovery(split.path, sim.url, sim.workspace_id))
            return
        if split.path != TOKEN_PATH:  # the token request carries a client secret: never in the request log
            sim.record(method, split.path, query, body)
        match = _API_PATH.match(split.path)
        op = match.group("op") if match else split.path
        sim.faults.count(method, op)
        time.sleep(sim.latency_for(split.path))  # set_latency: before faults and outside the lock, every answer late
        fault = sim.take_fault(split.path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status is not None:
                self._send_fault(fault)
                return
        hit = sim.faults.decide(method, split.path, op)
        if hit is not None and not hit.after_effect:
            if hit.delay:
                time.sleep(hit.delay)
            if hit.status is not None:
                self._send_fault(hit)
                return
        if split.path == TOKEN_PATH and method == "POST":
            with sim.workspace.lock:
                status, answer = sim.oauth.token(self.headers.get("Authorization"), self.headers.get("Content-Type"),
                                                 raw, sim.workspace.now_ms())
            self._send_json(status, answer)
            return
        denied = sim.check_auth(self.headers.get("Authorization"))
        if denied is not None:
            self._send_json(denied.status, {"error_code": denied.error_code, "message": denied.message})
            return
        if malformed:
            self._send_json(400, {"error_code": "MALFORMED_REQUEST", "message": f"Could not parse request object: {malformed}"})
            return
        route = ROUTES.get((method, op)) if match else None
        if route is None:
            self._send_json(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"No API found for '{method} {split.path}'"})
            return
        try:
            with sim.workspace.lock:
                sim.workspace.tick()
                payload = route(Request(sim, match.group("version"), query, body))
        except ApiError as exc:
            self._send_json(exc.status, {"error_code": exc.error_code, "message": exc.message})
            return
        sim.faults.count_applied(method, op)
        if hit is not None and hit.after_effect:
            self._lose_answer(hit, payload)
            return
        self._send_json(200, payload)

    def _lose_answer(self, hit: Hit, payload: dict[str, Any]) -> None:
        """The action took effect; the client gets no answer, a 500, or the answer too late."""
        if hit.kind == "lost_drop":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if hit.kind == "lost_500":
            self._send_fault(hit)
            return
        time.sleep(hit.delay)
        self._send_json(200, payload)

    def _admin(self, method: str, op: str, body: dict[str, Any]) -> None:
        sim = self.server.sim
        denied = sim.check_auth(self.headers.get("Authorization"))
        if denied is not None:
            self._send_json(denied.status, {"error_code": denied.error_code, "message": denied.message})
            return
        try:
            self._send_json(200, sim.admin(method, op, body))
        except ApiError as exc:
            self._send_json(exc.status, {"error_code": exc.error_code, "message": exc.message})

    def _send_fault(self, fault: Any) -> None:
        headers = {"Retry-After": str(int(fault.retry_after))} if fault.retry_after is not None else {}
        if getattr(fault, "body", None) is not None:
            self._send(fault.status, fault.body.encode(), "text/html; charset=utf-8", headers)
        else:
            self._send_json(fault.status, {"error_code": fault.error_code, "message": fault.message}, headers)

    def _send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", headers or {})

    def _send(self, status: int, data: bytes, content_type: str, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (its read timeout); the request was still processed, as a real server would.
            log.debug("sim: client went away before the answer", extra={"status": status})


class SimHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: SimulatorFace) -> None:
        super().__init__(address, SimHandler)
        self.sim = sim
