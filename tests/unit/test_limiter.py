"""The per-workspace request limit: callers wait their turn, never fail, and N instances stay under the budget."""

from __future__ import annotations

import threading

import pytest

from shared.databricks.limiter import RequestLimit, TokenBucket, WorkspaceLimiters


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
    buckets = [WorkspaceLimiters(limit).for_workspace("ws") for _ in range(limit.max_instances)]
    # At most rate + burst requests pass in any one second: together, never more than the workspace's budget.
    assert sum(b.rate + b.burst for b in buckets) == limit.workspace_rate


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
