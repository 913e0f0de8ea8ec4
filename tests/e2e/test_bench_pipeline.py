"""`make bench-pipeline` at smoke size: the command runs end to end and its figures are consistent.

The real bench (1,000 webhooks) is a separate command; this keeps it working within `make test`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FAILURES, LATENCY = 20, 0.1


def test_a_small_burst_is_fully_decided_and_measured():
    done = subprocess.run(
        [sys.executable, "-m", "localdev.bench_pipeline", "--failures", str(FAILURES), "--latency", str(LATENCY),
         "--time-limit", "60", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=90,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    f = json.loads(done.stdout)
    assert f["decided"] == FAILURES and f["undecided"] == 0
    # The workload's mix, as the rules decide it: 12 network/timeout, 6 code, 2 out-of-memory on a job cluster.
    assert f["actions"] == {"RETRY": 12, "SEND_EMAIL": 6, "RETRY_WITH_NEW_PARAMS": 2}
    # Counted at the simulator: every failure reads the run, its output and the job; retries repair.
    calls = f["jobs_api_calls_by_endpoint"]
    assert calls["GET jobs/runs/get"] >= FAILURES and calls["GET jobs/runs/get-output"] >= FAILURES
    assert calls["POST jobs/runs/repair"] == 14 and calls["POST jobs/update"] == 2
    assert f["jobs_api_calls_per_failure"] == round(sum(calls.values()) / FAILURES, 2)
    # Every failure waits for its Jobs API calls one after another, so the latency shows in the percentiles.
    assert f["webhook_to_decision_s"]["p50"] >= 3 * LATENCY
    assert f["webhook_to_action_s"]["p50"] <= f["webhook_to_action_s"]["p99"] <= f["seconds_to_decide_burst"] + 1
    # Counted at the Table proxy: the decision inserted with its claim and the done record written for each
    # failure, at least, and within the budget of issue 13 (at most 6 per rules-only failure).
    kinds = f["table_ops_by_kind"]
    assert kinds.get("insert", 0) >= FAILURES and kinds.get("replace", 0) >= FAILURES
    assert 2 <= f["table_ops_per_failure"] <= 6
    assert f["concurrency"] == 20 and f["concurrency_from"] == "batchSize 4 + newBatchThreshold 16"
    # Measured per endpoint at the simulator, against the limiter's budget for that endpoint's class.
    assert f["peak_within_budgets"], f["jobs_api_peak_by_endpoint"]
    assert f["jobs_api_peak_by_endpoint"]["GET jobs/get"]["budget"] == 16
    bound = f["concurrency"] / (f["jobs_api_calls_per_failure"] * LATENCY) * 3600
    assert abs(f["bound_per_hour"] - bound) <= 0.01 * bound
    assert f["fraction_of_bound"] == round(f["failures_per_hour"] / f["bound_per_hour"], 3)
    assert f["jobs_api_peak_requests_per_s"] >= 1
