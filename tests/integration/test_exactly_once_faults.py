"""Exactly once under Jobs API faults: 160 failures of four kinds through the real pipeline and client, against
the simulator answering ~20% of requests with 429 (with and without Retry-After), 500, 503, the retryable 400s,
slow answers and answers lost after the action took effect, the timer ticking while the workers are busy.
The long run is `python -m localdev.fault_soak`."""

from __future__ import annotations

from localdev.fault_soak import SoakConfig, run_soak


def test_every_failure_is_decided_and_acted_on_exactly_once_under_faults():
    report = run_soak(SoakConfig(failures=160, fault_fraction=0.2, seed=3, workers=8, timeout_s=0.15))

    print(report.text())
    assert report.problems() == []
    assert sum(report.injected.values()) >= 0.15 * report.requests  # the faults really were there
    assert {"lost_drop", "lost_500", "lost_stall", "throttle", "throttle_bare", "error", "lock"} <= set(report.injected)
    assert report.statuses == {"done": 160} and report.timer_ticks >= 1  # the timer raced the workers
    assert report.repairs_applied == 80 and report.updates_applied == 80  # 40 resizes and their 40 reverts
