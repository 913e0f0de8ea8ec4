"""The poller against the simulator over HTTP on a busy workspace: 30,000 runs in the window."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from localdev.databricks_sim import TaskFailure
from shared.pipeline import PipelineDeps
from shared.poller import poll
from shared.settings import Settings
from shared.state import MemoryStateStore
from shared.store import MemoryDecisionStore


def test_thirty_thousand_runs_no_error_the_checkpoint_advances_within_the_budget(sim, jobs_api, capsys):
    sim.add_busy_runs(30_000)
    job = sim.add_job("nb", [{"task_key": "t", "notebook_task": {"notebook_path": "/t"}}])
    failed = sim.fail_run(job, {"t": TaskFailure(error="java.net.SocketTimeoutException: Read timed out")},
                          duration_s=60)
    queued = []
    settings = Settings(databricks_workspace_url=sim.url, poll_settle_minutes=0, poll_time_budget_seconds=240)
    deps = PipelineDeps(settings=settings, jobs_api=lambda ws: jobs_api, workspace_key=lambda ws: "default",
                        store=MemoryDecisionStore(), state=MemoryStateStore(), notifier=None, classify=None,
                        enqueue=lambda event, delay: queued.append(event))
    now = datetime.fromtimestamp(sim.workspace.now_ms() / 1000, tz=timezone.utc)
    deps.state.put("checkpoint", "default", {"until_ms": sim.workspace.now_ms() - 3_600_000})

    started = time.monotonic()
    report = poll(deps, now=now)
    elapsed = time.monotonic() - started

    assert report.errors == [] and report.unfinished == []
    assert [e.run_id for e in queued] == [failed]
    assert report.listed >= 30_001 and report.pages >= 1_200  # past the 1,000 pages that used to raise
    assert deps.state.get("checkpoint", "default") == {"until_ms": int(now.timestamp() * 1000)}
    assert elapsed < settings.poll_time_budget_seconds / 4
    assert {c.query.get("completed_only") for c in sim.requests_to("/runs/list")} == {"true"}
    assert {c.query.get("run_type") for c in sim.requests_to("/runs/list")} == {"JOB_RUN"}
    with capsys.disabled():
        print(f"\n[poller] 30,001 runs over HTTP: {report.pages} pages in {elapsed:.1f}s")
