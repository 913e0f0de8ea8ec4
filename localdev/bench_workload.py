"""The bench's simulated workspace, in its own process: N jobs each with one failed run of a realistic mix,
every Jobs API answer late by the set latency.

    python -m localdev.bench_workload --failures 1000 --latency 0.1 [--unsure 0.1]

prints one JSON line {"url", "token", "workspace_id", "failures": [[job_id, run_id, kind], ...]} and serves
until its stdin closes. Counters and the peak rate: GET /sim/stats (bearer token). Its own process so that
the simulator's work does not share the app's interpreter lock, as a real workspace would not.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from typing import Any

from localdev.databricks_sim import DatabricksSimulator, TaskFailure
from localdev.databricks_sim.scenarios import (
    CAST_ERROR, CAST_TRACE, NETWORK_ERROR, NETWORK_TRACE, OOM_ERROR, OOM_TRACE, READ_TIMEOUT_ERROR,
    READ_TIMEOUT_TRACE, STANDARD_CLUSTER, SYNTAX_ERROR,
)

TOKEN = "dapi-bench-0000000000000000000000000000"
WORKSPACE_ID = "7777777777777777"
# Out of every 20 failures: 8 network and 4 timeouts (rules → RETRY), 6 code errors (→ SEND_EMAIL),
# 2 out-of-memory on a job cluster (→ RETRY_WITH_NEW_PARAMS, a resize). Rules-only: none asks the model.
MIX = ("network",) * 8 + ("timeout",) * 4 + ("code_sql",) * 3 + ("code_cast",) * 3 + ("resource",) * 2
# A failure no rule recognises: the classifier is unsure and asks the model (when one is configured). Each
# names its own step (letters outside hex, which the LLM cache keeps), so no answer is served from the cache.
UNSURE_ERROR = "Step finalize_{step} ended with status 3 after 412 s; see the step's own report for details."


def _letters(i: int) -> str:
    """`i` spelled in letters: fingerprints keep words and drop numbers and hex."""
    return "".join("klmnopqrst"[int(d)] for d in f"{i:05d}")


def unsure_failure(i: int) -> TaskFailure:
    return TaskFailure(error=UNSURE_ERROR.format(step=_letters(i)))


def kinds(failures: int, unsure: float) -> list[str]:
    """The kind of each failure, deterministic: every k-th one unsure for a fraction 1/k, the others the MIX."""
    every = max(1, round(1 / unsure)) if unsure > 0 else 0
    out, sure = [], 0
    for i in range(failures):
        if every and i % every == every - 1:
            out.append("unsure")
        else:
            out.append(MIX[sure % len(MIX)])
            sure += 1
    return out


def _task(kind: str) -> dict[str, Any]:
    if kind == "code_sql":
        return {"task_key": "refresh", "sql_task": {"file": {"path": "/Repos/bi/kpis.sql", "source": "WORKSPACE"},
                                                    "warehouse_id": "3f8a2b71c9d04e15"}, "timeout_seconds": 1800}
    return {"task_key": "main", "job_cluster_key": "etl_cluster", "timeout_seconds": 7200,
            "notebook_task": {"notebook_path": f"/Repos/etl/{kind}", "source": "WORKSPACE"}}


_FAILURES = {
    "network": TaskFailure(error=NETWORK_ERROR, error_trace=NETWORK_TRACE),
    "timeout": TaskFailure(error=READ_TIMEOUT_ERROR, error_trace=READ_TIMEOUT_TRACE),
    "code_sql": TaskFailure(error=SYNTAX_ERROR),
    "code_cast": TaskFailure(error=CAST_ERROR, error_trace=CAST_TRACE),
    "resource": TaskFailure(error=OOM_ERROR, error_trace=OOM_TRACE),
}


def load(sim: DatabricksSimulator, failure_kinds: list[str], *, distinct_causes: bool = False
         ) -> list[tuple[int, int, str]]:
    """One job per failure (distinct chains, as N different jobs failing), each with its failed run.

    `distinct_causes`: each error names its own stage in words, so no two failures share a fingerprint and none
    joins another's incident (the bench's mix otherwise repeats five causes, which real jobs would group)."""
    out = []
    for i, kind in enumerate(failure_kinds):
        task = _task(kind)
        clusters = [] if kind == "code_sql" else [{"job_cluster_key": "etl_cluster", "new_cluster": dict(STANDARD_CLUSTER)}]
        job = sim.add_job(f"bench_{kind}_{i:05d}", [task], job_clusters=clusters,
                          email_notifications={"on_failure": ["data-oncall@contoso.example"]})
        failure = unsure_failure(i) if kind == "unsure" else _FAILURES[kind]
        if distinct_causes and kind != "unsure":
            # Into every "Type: message", so whichever the classifier takes for the root cause names the stage.
            # And at the end, where a text's last clause is its cause.
            stage, word = f": in stage {_letters(i)}, ", f" (stage {_letters(i)})"
            failure = replace(failure, error=(failure.error or "").replace(": ", stage) + word,
                              error_trace=failure.error_trace.replace(": ", stage) + word if failure.error_trace else None)
        out.append((job, sim.fail_run(job, {task["task_key"]: failure}), kind))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.bench_workload", description=__doc__.splitlines()[0])
    parser.add_argument("--failures", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added to every Jobs API answer")
    parser.add_argument("--unsure", type=float, default=0.0, help="fraction of failures no rule recognises (0..1)")
    args = parser.parse_args(argv)
    sim = DatabricksSimulator(token=TOKEN, workspace_id=WORKSPACE_ID)
    sim.start()
    # Independent failures (the storm test measures shared ones): each its own cause, so the incident check is
    # the one operation a lone failure costs, and nothing is held for a canary.
    failures = load(sim, kinds(args.failures, args.unsure), distinct_causes=True)
    sim.faults.reset_counts()
    sim.set_latency(args.latency)
    print(json.dumps({"url": sim.url, "token": TOKEN, "workspace_id": WORKSPACE_ID, "failures": failures}),
          flush=True)
    sys.stdin.read()  # serve until the bench closes our stdin (or dies)
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
