"""The per-workspace request limit: callers wait their turn, never fail, and N instances stay under the budget."""

from __future__ import annotations

import threading

import pytest

from shared.databricks.limiter import RequestLimit, TokenBucket, WorkspaceLimiters, class_of, endpoint_of


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_a_burst_goes_through_then_calls_are_spaced_at_the_rate():
    t = FakeTime()
    bucket = TokenBucket(rate=5, burst=2, clock=t.clock, sleep=t.sleep)
    waits = [bucket.acquire() for _ in range(6)]
    assert waits[:2] == [0.0, 0.0]
    assert waits[2:] == pytest.approx([0.2, 0.2, 0.2, 0.2])
    assert t.now == pytest.approx(0.8)


def test_tokens_come_back_with_time_up_to_the_burst():
    t = FakeTime()
    bucket = TokenBucket(rate=10, burst=3, clock=t.clock, sleep=t.sleep)
    for _ in range(3):
        bucket.acquire()
    t.now += 100  # a long quiet time saves at most `burst` tokens
    assert [bucket.acquire() for _ in range(4)] == pytest.approx([0, 0, 0, 0.1])


def test_concurrent_callers_are_queued_not_refused_and_the_rate_holds():
    bucket = TokenBucket(rate=200, burst=1)
    stamps: list[float] = []
    lock = threading.Lock()

    def call() -> None:
        bucket.acquire()
        import time

        with lock:
            stamps.append(time.monotonic())

    threads = [threading.Thread(target=call) for _ in range(41)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert len(stamps) == 41
    elapsed = max(stamps) - min(stamps)
    assert elapsed >= 40 / 200 * 0.9  # 40 intervals at 200/s, give or take the scheduler


def test_a_wait_past_max_wait_is_cut_short_so_a_message_is_never_held_by_our_own_limit():
    t = FakeTime()
    bucket = TokenBucket(rate=0.01, burst=1, clock=t.clock, sleep=t.sleep, max_wait=5)
    bucket.acquire()
    assert bucket.acquire() == 5


def test_instances_share_the_workspace_budget():
    limit = RequestLimit(workspace_rate=20, burst=10, max_instances=4)
    assert limit.instance_rate == 5
    # Each instance (process) runs its own bucket at its share: at full scale they sum to the workspace's rate.
    buckets = [WorkspaceLimiters(limit).for_workspace("ws").bucket("jobs/get") for _ in range(limit.max_instances)]
    # At most rate + burst requests pass in any one second: together, never more than the workspace's budget.
    assert 0.75 * limit.workspace_rate <= sum(b.rate + b.burst for b in buckets) <= limit.workspace_rate


def test_no_one_second_window_sees_more_than_the_share():
    t = FakeTime()
    limit = RequestLimit(workspace_rate=20, burst=10, max_instances=1)
    rate, burst = limit.bucket_shape()
    bucket = TokenBucket(rate, burst, clock=t.clock, sleep=t.sleep)
    stamps = []
    for _ in range(200):
        bucket.acquire()
        stamps.append(t.now)
    worst = max(sum(1 for s in stamps if start <= s < start + 1.0) for start in stamps)
    assert worst <= 20


def test_each_workspace_has_its_own_bucket():
    limiters = WorkspaceLimiters(RequestLimit(10, 5, 1))
    assert limiters.for_workspace("a") is limiters.for_workspace("a")
    assert limiters.for_workspace("a") is not limiters.for_workspace("b")


def test_a_nonsense_rate_is_refused():
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1)


# --- budgets per endpoint, by class -----------------------------------------------------------------------

LIMIT = RequestLimit(workspace_rate=15, burst=1, max_instances=1, class_rates=(("runs", 50), ("job_writes", 5)))


def test_endpoints_are_classed_by_their_path():
    assert endpoint_of("/api/2.2/jobs/runs/get") == "jobs/runs/get"
    assert endpoint_of("/api/2.1/clusters/get?cluster_id=x") == "clusters/get"
    assert [class_of(endpoint_of(f"/api/2.2/{e}")) for e in
            ("jobs/runs/get", "jobs/runs/get-output", "jobs/get", "jobs/runs/repair", "jobs/run-now", "jobs/update")] \
        == ["runs", "runs", "jobs", "jobs", "jobs", "job_writes"]


def test_each_endpoint_has_its_own_bucket_sized_by_its_class():
    buckets = WorkspaceLimiters(LIMIT).for_workspace("ws")
    runs, job, repair, update = (buckets.bucket(e) for e in ("jobs/runs/get", "jobs/get", "jobs/runs/repair",
                                                              "jobs/update"))
    # Each at its class's budget, less the headroom kept for jitter (one request, or 5 %).
    assert (runs.rate + runs.burst, job.rate + job.burst, update.rate + update.burst) == (47.5, 14, 4)
    assert job is not repair  # Databricks limits each endpoint: jobs/get and repair do not share a budget
    assert buckets.bucket("jobs/get") is job


def test_a_run_read_does_not_wait_behind_the_jobs_budget():
    t = FakeTime()
    buckets = WorkspaceLimiters(LIMIT, clock=t.clock, sleep=t.sleep).for_workspace("ws")
    for _ in range(30):
        buckets.acquire("/api/2.2/jobs/get")
    spent = t.now
    assert spent > 1.5  # 30 jobs/get at 13/s steady
    assert buckets.acquire("/api/2.2/jobs/runs/get") == 0.0 and t.now == spent


def test_per_endpoint_no_one_second_window_exceeds_its_budget_with_two_instances():
    limit = RequestLimit(workspace_rate=15, burst=10, max_instances=2, class_rates=(("runs", 50),))
    for endpoint, budget in (("jobs/get", 15), ("jobs/runs/get", 50)):
        stamps = []
        for _ in range(2):  # two instances, each its own process and bucket, started together
            t = FakeTime()
            bucket = WorkspaceLimiters(limit, clock=t.clock, sleep=t.sleep).for_workspace("ws").bucket(endpoint)
            for _ in range(300):
                bucket.acquire()
                stamps.append(t.now)
        worst = max(sum(1 for s in stamps if start <= s < start + 1.0) for start in stamps)
        assert worst <= budget, (endpoint, worst)
