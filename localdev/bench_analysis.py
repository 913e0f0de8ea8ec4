"""What the pipeline bench reports beyond its counts: each endpoint's peak against the limiter's budget, and a
profile of the invocations (localdev/bench_pipeline.py)."""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import Any


def budget_figures(sim_stats: dict[str, Any], calls_per_endpoint: dict[str, float],
                    per_hour: float) -> dict[str, Any]:
    """Each endpoint's peak requests/s against its configured budget, and the bound the budgets put on
    failures/hour (the steady rate of the tightest endpoint's bucket ÷ its calls per failure)."""
    from shared.databricks.limiter import RequestLimit, class_of
    from shared.settings import Settings

    fields = Settings.model_fields
    limit = RequestLimit(fields["databricks_requests_per_second"].default, fields["databricks_request_burst"].default,
                         1, (("runs", fields["databricks_runs_requests_per_second"].default),
                             ("job_writes", fields["databricks_job_writes_per_second"].default)))
    peaks = {}
    bounds = []
    for key, peak in (sim_stats.get("peak_rate_by_endpoint") or {}).items():
        if "/sim/" in key or key.split(" ", 1)[1].startswith("sim/"):
            continue
        endpoint = key.split(" ", 1)[1]
        budget = limit.rate_of(class_of(endpoint))
        peaks[key] = {"peak": peak, "budget": budget}
        steady, _ = limit.bucket_shape(class_of(endpoint))
        if calls_per_endpoint.get(key):
            bounds.append(steady / calls_per_endpoint[key] * 3600)
    budget_bound = min(bounds) if bounds else None
    return {
        "jobs_api_peak_by_endpoint": peaks,
        "peak_within_budgets": all(p["peak"] <= p["budget"] for p in peaks.values()),
        "budget_bound_per_hour": round(budget_bound) if budget_bound else None,
        "fraction_of_budget_bound": round(per_hour / budget_bound, 3) if budget_bound else None,
    }



@contextlib.contextmanager
def profiled(path: str) -> Any:
    """cProfile each function invocation of the local runner (its threads), merged into one stats file."""
    import cProfile
    import pstats

    from localdev.host import core

    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    real_run = core.LocalFunctionsHost._run

    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        profiler = cProfile.Profile()
        with lock:
            profiles.append(profiler)
        profiler.enable()
        try:
            return real_run(self, *args, **kwargs)
        finally:
            profiler.disable()

    core.LocalFunctionsHost._run = run  # type: ignore[method-assign]
    try:
        yield
    finally:
        core.LocalFunctionsHost._run = real_run  # type: ignore[method-assign]
        if profiles:
            stats = pstats.Stats(profiles[0])
            for more in profiles[1:]:
                stats.add(more)
            stats.dump_stats(path)
            print(f"profile of {len(profiles)} invocations written to {path}", file=sys.stderr)
