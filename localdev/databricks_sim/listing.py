"""runs/list as the Jobs API pages it, over the workspace's full runs and a cheap "busy workspace" of many more.

Pages are newest first (start_time, then run_id), `limit` 1..25 (0 or absent: 20 / 25 as documented), with an
opaque cursor in `next_page_token` / `prev_page_token` (stable while new runs start), `has_more`, and the
filters `job_id`, `active_only`, `completed_only`, `run_type`, `start_time_from`, `start_time_to`,
`expand_tasks`. The deprecated `offset` is still accepted without a page token, as the SDK documents.
Bulk runs are tuples (start, run_id, job_id, duration): 30,000 of them cost a few megabytes and no rendering
until a page shows them.
"""

from __future__ import annotations

import base64
import bisect
import heapq
import itertools
import json
import random
from collections.abc import Iterator
from typing import Any, NamedTuple

from localdev.databricks_sim.errors import invalid
from localdev.databricks_sim.model import JobRun, run_json, run_page_url

MAX_LIMIT, DEFAULT_LIMIT, EXPANDED_MAX = 25, 20, 100


class BulkRun(NamedTuple):
    start_time: int
    run_id: int
    job_id: int
    duration_ms: int


class BulkRuns:
    """Many finished, successful, one-task runs kept as tuples sorted by (start_time, run_id)."""

    def __init__(self) -> None:
        self.items: list[BulkRun] = []
        self.by_id: dict[int, BulkRun] = {}
        self.job_names: dict[int, str] = {}

    def add(self, run_ids: Iterator[int], job_id: int, job_name: str, count: int, start_from: int, start_to: int,
            seed: int) -> list[int]:
        rng = random.Random(seed)
        new = []
        for _ in range(count):
            run_id = next(run_ids)
            next(run_ids)  # the id of its one task run
            new.append(BulkRun(rng.randint(start_from, start_to), run_id, job_id, rng.randint(30_000, 900_000)))
        self.items = sorted(itertools.chain(self.items, new))
        self.by_id.update((r.run_id, r) for r in new)
        self.job_names[job_id] = job_name
        return [r.run_id for r in new]

    def clear(self) -> None:
        self.items, self.by_id, self.job_names = [], {}, {}


def bulk_run_json(run: BulkRun, name: str, base_url: str, workspace_id: str, *, with_tasks: bool) -> dict[str, Any]:
    """A finished successful run as runs/list and runs/get show it."""
    end = run.start_time + run.duration_ms
    state = {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS", "user_cancelled_or_timedout": False}
    status = {"state": "TERMINATED", "termination_details": {"code": "SUCCESS", "type": "SUCCESS", "message": ""}}
    out: dict[str, Any] = {
        "job_id": run.job_id, "run_id": run.run_id, "number_in_job": run.run_id, "original_attempt_run_id": run.run_id,
        "attempt_number": 0, "creator_user_name": "scheduler@contoso.example", "run_name": name,
        "run_type": "JOB_RUN", "trigger": "PERIODIC", "state": state, "status": status,
        "start_time": run.start_time, "end_time": end, "setup_duration": 0, "execution_duration": 0,
        "cleanup_duration": 0, "run_duration": run.duration_ms, "queue_duration": 0,
        "run_page_url": run_page_url(base_url, workspace_id, run.job_id, run.run_id),
    }
    if with_tasks:
        out["tasks"] = [{
            "run_id": run.run_id + 1, "task_key": "main", "attempt_number": 0, "state": state, "status": status,
            "notebook_task": {"notebook_path": "/Jobs/main", "source": "WORKSPACE"}, "environment_key": "default",
            "start_time": run.start_time, "end_time": end,
            "run_page_url": run_page_url(base_url, workspace_id, run.job_id, run.run_id + 1),
        }]
    return out


def list_runs(runs: dict[int, JobRun], bulk: BulkRuns, query: dict[str, str], base_url: str,
              workspace_id: str) -> dict[str, Any]:
    """The runs/list answer for `query`."""
    q = query
    limit = _int(q.get("limit"), "limit", DEFAULT_LIMIT) or MAX_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid(f"Invalid limit {limit}: it must be between 1 and {MAX_LIMIT}.")
    active, completed = _flag(q, "active_only"), _flag(q, "completed_only")
    if active and completed:
        raise invalid("active_only and completed_only cannot both be true.")
    job_id = _int(q.get("job_id"), "job_id", None)
    t_from, t_to = _int(q.get("start_time_from"), "start_time_from", 0), _int(q.get("start_time_to"), "start_time_to", 2**62)
    run_type = q.get("run_type") or None

    def keep_full(r: JobRun) -> bool:
        return ((job_id is None or r.job_id == job_id) and t_from <= r.start_time <= t_to
                and not (completed and r.in_progress) and not (active and not r.in_progress)
                and (run_type is None or r.run_type == run_type))

    bulk_ok = not active and run_type in (None, "JOB_RUN")
    full = sorted(((r.start_time, r.run_id), r) for r in runs.values() if keep_full(r))
    token = _decode(q["page_token"]) if q.get("page_token") else None
    backwards = token is not None and "before" in token
    if token is None:
        cursor = None
        skip = _int(q.get("offset"), "offset", 0)
    else:
        cursor, skip = tuple(token["before" if backwards else "after"]), 0

    def full_iter() -> Iterator[tuple[tuple[int, int], Any]]:
        items = full if backwards else reversed(full)
        return (item for item in items if cursor is None or (item[0] > cursor if backwards else item[0] < cursor))

    def bulk_iter() -> Iterator[tuple[tuple[int, int], Any]]:
        if not bulk_ok:
            return
        items = bulk.items
        lo = bisect.bisect_left(items, (t_from,))
        hi = bisect.bisect_right(items, (t_to, 2**62))
        if backwards:
            start = bisect.bisect_right(items, (cursor[0], cursor[1], 2**62)) if cursor else lo
            indices = range(max(start, lo), hi)
        else:
            end = bisect.bisect_left(items, cursor) if cursor else hi
            indices = range(min(end, hi) - 1, lo - 1, -1)
        for i in indices:
            r = items[i]
            if job_id is None or r.job_id == job_id:
                yield (r.start_time, r.run_id), r

    merged = heapq.merge(full_iter(), bulk_iter(), key=lambda item: item[0], reverse=not backwards)
    chosen = list(itertools.islice(merged, skip, skip + limit + 1))
    more_this_way = len(chosen) > limit
    chosen = chosen[:limit]
    if backwards:
        chosen.reverse()
    expand = _flag(q, "expand_tasks")
    out: dict[str, Any] = {}
    if chosen:
        out["runs"] = [_render(r, bulk, base_url, workspace_id, expand) for _, r in chosen]
    first, last = (chosen[0][0], chosen[-1][0]) if chosen else (None, None)
    has_more = (more_this_way if not backwards else bool(chosen))
    has_previous = (cursor is not None or skip > 0) if not backwards else more_this_way
    out["has_more"] = bool(has_more and chosen)
    if out["has_more"]:
        out["next_page_token"] = _encode({"after": list(last)})
    if has_previous and chosen:
        out["prev_page_token"] = _encode({"before": list(first)})
    return out


BASE_JOB_FIELDS = ("job_id", "creator_user_name", "created_time", "settings")


def list_jobs(jobs: dict[int, dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    """jobs/list: newest first, `limit` 1..100 (default 20), exact case-insensitive `name`, `expand_tasks`."""
    limit = _int(query.get("limit"), "limit", DEFAULT_LIMIT)
    if not 1 <= limit <= 100:
        raise invalid(f"Invalid limit {limit}: it must be between 1 and 100.")
    name = (query.get("name") or "").lower()
    chosen = [j for j in sorted(jobs.values(), key=lambda j: (j["created_time"], j["job_id"]), reverse=True)
              if not name or j["settings"].get("name", "").lower() == name]
    start = _decode_jobs(query["page_token"]) if query.get("page_token") else _int(query.get("offset"), "offset", 0)
    page = chosen[start:start + limit]
    out: dict[str, Any] = {"has_more": start + limit < len(chosen)}
    if page:
        out["jobs"] = [_base_job(j, _flag(query, "expand_tasks")) for j in page]
    if out["has_more"]:
        out["next_page_token"] = _encode({"jobs_offset": start + limit})
    if start > 0:
        out["prev_page_token"] = _encode({"jobs_offset": max(0, start - limit)})
    return out


def _base_job(job: dict[str, Any], expand: bool) -> dict[str, Any]:
    out = json.loads(json.dumps({k: job[k] for k in BASE_JOB_FIELDS if k in job}))
    for name in ("tasks", "job_clusters"):
        if not expand:
            out["settings"].pop(name, None)
        elif name in out["settings"]:
            out["settings"][name] = out["settings"][name][:EXPANDED_MAX]
    return out


def _decode_jobs(token: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return int(data["jobs_offset"])
    except (ValueError, KeyError, TypeError) as exc:
        raise invalid(f"Invalid page token: {token}") from exc


def _render(run: Any, bulk: BulkRuns, base_url: str, workspace_id: str, expand: bool) -> dict[str, Any]:
    if isinstance(run, BulkRun):
        return bulk_run_json(run, bulk.job_names.get(run.job_id, "busy_job"), base_url, workspace_id,
                             with_tasks=expand)
    data = run_json(run, base_url, workspace_id, include_history=False)
    if not expand:
        return {k: v for k, v in data.items() if k not in ("tasks", "job_clusters")}
    for name in ("tasks", "job_clusters"):  # "only the first 100 elements will be shown" (SDK docstring)
        if name in data:
            data[name] = data[name][:EXPANDED_MAX]
    return data


def _encode(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"kind": "runs", **data}, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(token: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError as exc:
        raise invalid(f"Invalid page token: {token}") from exc
    if not isinstance(data, dict) or data.get("kind") != "runs" or not ({"after", "before"} & set(data)):
        raise invalid(f"Invalid page token: {token}")
    return data


def _int(value: Any, name: str, default: int | None) -> Any:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise invalid(f"Invalid value for {name}: {value!r} is not an integer.") from exc


def _flag(query: dict[str, str], name: str) -> bool:
    return query.get(name, "false").lower() == "true"
