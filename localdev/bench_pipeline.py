"""`make bench-pipeline`: the throughput of the whole agent on one instance, measured end to end.

Starts Azurite, a counting proxy in front of its Table endpoint (localdev/table_proxy.py), the Databricks
simulator in its own process with N jobs each holding one failed run and every Jobs API answer ~100 ms late
(localdev/bench_workload.py), and function_app in the local runner with host.json as deployed. Fires N
webhooks at once, waits until every failure is decided, acted on and notified (status "done" in the
decisions table) or the time limit passes, and prints the figures. Loopback only; bounded in count and time.

    python -m localdev.bench_pipeline [--failures 1000] [--latency 0.1] [--time-limit 600] [--llm | --unsure F]
                                      [--json] [--profile FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from localdev.bench_analysis import budget_figures, profiled

ROOT = Path(__file__).resolve().parent.parent
USER, PASSWORD = "databricks", "bench-webhook-password"
SENDERS = 16  # parallel webhook deliveries: Databricks sends notifications from many workers at once
LLM_DELAY_S = 2.0


def concurrency_of(host_json: dict[str, Any]) -> tuple[int, str]:
    """Invocations of one queue function in flight on one instance, and how that follows from host.json."""
    queues = host_json.get("extensions", {}).get("queues", {})
    batch, threshold = int(queues.get("batchSize", 16)), int(queues.get("newBatchThreshold", 8))
    # "The maximum number of messages processed in parallel by the job is NewBatchThreshold plus BatchSize"
    # (QueuesOptions, Microsoft.Azure.WebJobs.Extensions.Storage.Queues 5.x API reference); a new batch is
    # fetched only when the number running drops to newBatchThreshold or below.
    return batch + threshold, f"batchSize {batch} + newBatchThreshold {threshold}"


def run_bench(failures: int, *, latency: float = 0.1, unsure: float = 0.0, llm: bool = False,
              time_limit: float = 600.0, profile: str | None = None) -> dict[str, Any]:
    """One burst of `failures` webhooks through the whole app; returns the figures. With `profile`, every
    invocation runs under cProfile (per thread) and the merged stats are written to that file."""
    if profile:
        with profiled(profile):
            return run_bench(failures, latency=latency, unsure=unsure, llm=llm, time_limit=time_limit)
    from localdev.azurite import start_azurite

    deadline = time.monotonic() + time_limit
    azurite = start_azurite()
    children: list[subprocess.Popen] = []
    fake_llm = None
    try:
        proxy = _child(children, ["-m", "localdev.table_proxy", "--upstream-port", str(azurite.table_port)])
        proxy_url = f"http://127.0.0.1:{proxy['port']}"
        workload = _child(children, ["-m", "localdev.bench_workload", "--failures", str(failures),
                                     "--latency", str(latency), "--unsure", str(unsure)], stdin=True)
        if llm:
            fake_llm = _slow_llm(failures)
        app_storage = azurite.connection_string.replace(
            f"TableEndpoint=http://127.0.0.1:{azurite.table_port}/", f"TableEndpoint={proxy_url}/")
        with tempfile.TemporaryDirectory(prefix="bench-emails-") as emails:
            env = _environment(app_storage, workload, emails, fake_llm)
            return _measure(azurite.connection_string, proxy_url, workload, env, failures, latency, unsure, deadline,
                            fake_llm)
    finally:
        for child in children:
            if child.stdin:
                child.stdin.close()
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        if fake_llm is not None:
            fake_llm.stop()
        azurite.stop()


def _measure(storage: str, proxy_url: str, workload: dict[str, Any], env: dict[str, str], failures: int,
             latency: float, unsure: float, deadline: float, fake_llm: Any) -> dict[str, Any]:
    from localdev.host import LocalFunctionsHost, load_app, read_host_json
    from localdev.host.settings import app_environment
    from shared import runtime

    with app_environment(env):  # the worker reads its settings from os.environ
        runtime.reset()
        host_json = read_host_json(ROOT)
        host = LocalFunctionsHost(load_app(ROOT), env["AzureWebJobsStorage"], host_json=host_json, env=env)
        host.start()
        try:
            url = f"{host.base_url}/api/databricks/webhook?code={host.host_key}"
            requests.post(f"{proxy_url}/_proxy/reset", timeout=5)
            runs = {run_id: kind for _, run_id, kind in workload["failures"]}
            started = time.time()
            sent, retried = _fire(url, workload)
            fired = time.time()
            rows = _wait_done(storage, env["DECISIONS_TABLE"], set(runs), deadline)
            ended = time.time()
            try:
                host.wait_idle(timeout=max(1.0, min(30.0, deadline - time.monotonic())))
            except TimeoutError:
                pass  # the time limit came first: the figures say how many were left undecided
            sim_stats = _get_json(f"{workload['url']}/sim/stats", workload["token"])
            tables = _get_json(f"{proxy_url}/_proxy/counts")
        finally:
            host.stop()
            runtime.reset()
    concurrency, how = concurrency_of(host_json)
    figures = _figures(runs, sent, rows, started, fired, ended, sim_stats, tables, concurrency, how, latency,
                       unsure, failures)
    figures["webhook_deliveries_retried"] = retried
    if fake_llm is not None:
        figures["llm_calls"] = len(fake_llm.chat_requests)
    return figures


def _figures(runs, sent, rows, started, fired, ended, sim_stats, tables, concurrency, how, latency, unsure,
             failures) -> dict[str, Any]:
    done = {run: row for run, row in rows.items() if row.get("status") == "done"}
    last = max((_ts(row["finished_at"]) for row in done.values()), default=ended)
    span = max(last - started, 1e-6)
    jobs_calls = {k: v for k, v in sim_stats.get("received", {}).items() if "/sim/" not in k}
    calls = sum(jobs_calls.values())
    calls_per_failure = calls / max(len(done), 1)
    bound = concurrency / (calls_per_failure * latency) * 3600 if calls_per_failure and latency else None
    per_hour = len(done) / span * 3600
    table_ops = sum(n for key, n in tables.items() if " create_table " not in f" {key} ")
    by_kind: Counter = Counter()
    for key, n in tables.items():
        table, kind, status = key.split(" ")
        by_kind[f"{kind}{'' if status.startswith('2') else f' ({status})'}"] += n
    to_action = sorted(_ts(r["finished_at"]) - sent[run] for run, r in done.items() if run in sent)
    to_decision = sorted(_ts(r["decided_at"]) - sent[run] for run, r in done.items() if r.get("decided_at"))
    return {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{platform.node()} ({os.cpu_count()} CPUs, Python {platform.python_version()})",
        "failures": failures, "decided": len(done), "undecided": failures - len(done),
        "unsure_fraction": unsure, "jobs_api_latency_s": latency,
        "concurrency": concurrency, "concurrency_from": how,
        "seconds_to_decide_burst": round(span, 2), "seconds_to_send_burst": round(fired - started, 2),
        "failures_per_hour": round(per_hour),
        "bound_per_hour": round(bound) if bound else None,
        "fraction_of_bound": round(per_hour / bound, 3) if bound else None,
        "webhook_to_action_s": {"p50": _pct(to_action, 50), "p99": _pct(to_action, 99)},
        "webhook_to_decision_s": {"p50": _pct(to_decision, 50), "p99": _pct(to_decision, 99)},
        "jobs_api_calls_per_failure": round(calls_per_failure, 2),
        "jobs_api_calls_by_endpoint": dict(sorted(jobs_calls.items())),
        "jobs_api_peak_requests_per_s": sim_stats.get("peak_rate"),
        **budget_figures(sim_stats, calls_per_endpoint={k: v / max(len(done), 1) for k, v in jobs_calls.items()},
                          per_hour=per_hour),
        "table_ops_per_failure": round(table_ops / max(len(done), 1), 2),
        "table_ops_by_kind": dict(sorted(by_kind.items())),
        "table_ops_per_failure_by_kind": {k: round(v / max(len(done), 1), 2) for k, v in sorted(by_kind.items())
                                          if k != "create_table"},
        "table_ops_by_table": _by_table(tables),
        "actions": dict(Counter(str(r.get("action")) for r in done.values())),
    }


def _fire(url: str, workload: dict[str, Any]) -> tuple[dict[int, float], int]:
    """POST one jobs.on_failure webhook per failed run, SENDERS at a time; returns run_id -> first send time,
    and how many deliveries were retried (a connection refused or reset: the local runner's HTTP front has a
    small accept backlog; Databricks retries failed deliveries too, and the agent drops duplicates)."""
    sent: dict[int, float] = {}
    retried: list[int] = []
    local = threading.local()

    def deliver(item: list) -> None:
        job_id, run_id, kind = item
        if getattr(local, "session", None) is None:
            local.session = requests.Session()
            local.session.trust_env = False  # loopback only: never through a proxy from the environment
        payload = {"event_type": "jobs.on_failure", "workspace_id": workload["workspace_id"],
                   "run": {"run_id": str(run_id)}, "job": {"job_id": str(job_id), "name": f"bench_{kind}"}}
        sent[run_id] = time.time()
        for attempt in range(1, 6):
            try:
                answer = local.session.post(url, json=payload, auth=(USER, PASSWORD), timeout=30)
                break
            except requests.ConnectionError:
                if attempt == 5:
                    raise
                retried.append(run_id)
                local.session = requests.Session()
                local.session.trust_env = False
                time.sleep(0.05 * attempt)
        if answer.status_code != 202:
            raise RuntimeError(f"webhook for run {run_id} answered {answer.status_code}: {answer.text[:200]}")

    with ThreadPoolExecutor(SENDERS) as pool:
        list(pool.map(deliver, workload["failures"]))
    return sent, len(retried)


def _wait_done(storage: str, table_name: str, runs: set[int], deadline: float) -> dict[int, dict[str, Any]]:
    """Poll the decisions table (straight to Azurite, not through the counting proxy) until every run is done."""
    from azure.data.tables import TableClient

    client = TableClient.from_connection_string(storage, table_name)
    rows: dict[int, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            entities = client.query_entities("repair_count eq 0", select=[
                "run_id", "status", "action", "decided_at", "finished_at", "received_at"])
            rows = {int(e["run_id"]): dict(e) for e in entities if int(e["run_id"]) in runs}
        except Exception:  # noqa: BLE001 - the table is created by the first invocation
            continue
        if sum(1 for r in rows.values() if r.get("status") == "done") >= len(runs):
            break
    return rows


def _environment(storage: str, workload: dict[str, Any], emails: str, fake_llm: Any) -> dict[str, str]:
    env = {
        "AzureWebJobsStorage": storage,
        "DATABRICKS_WORKSPACE_URL": workload["url"],
        "DATABRICKS_PAT_TOKEN": workload["token"],
        "DATABRICKS_WORKSPACE_ID": workload["workspace_id"],
        "AGENT_MODE": "act",
        "MAX_RETRIES": "3",
        "POLL_SCHEDULE": "0 0 0 1 1 *",  # the poller stays out of the burst
        "WEBHOOK_USERNAME": USER,
        "WEBHOOK_PASSWORD": PASSWORD,
        "EMAIL_ENABLED": "true",
        "EMAIL_TRANSPORT": "file",
        "EMAIL_FILE_DIR": emails,
        "EMAIL_SENDER": "agent@contoso.example",
        "EMAIL_DEFAULT_RECIPIENTS": "oncall@contoso.example",
        "DECISIONS_TABLE": os.environ.get("DECISIONS_TABLE", "agentdecisions"),
        "LOG_LEVEL": "WARNING",
        # As infra/modules/functionapp.bicep deploys it: the worker's threads, shared by every function.
        "PYTHON_THREADPOOL_THREAD_COUNT": "32",
    }
    if fake_llm is not None:
        env.update({"AZURE_OPENAI_ENDPOINT": fake_llm.endpoint, "AZURE_OPENAI_API_KEY": fake_llm.api_key,
                    "AZURE_OPENAI_DEPLOYMENT": fake_llm.deployments[0], "AZURE_OPENAI_MODEL": "gpt-4o-mini",
                    "LLM_DAILY_MAX_CALLS": "0", "LLM_DAILY_BUDGET_USD": "0"})  # no cap: measure the model's cost
    return env


def _slow_llm(failures: int) -> Any:
    """The Azure OpenAI fake answering each of up to `failures` requests after LLM_DELAY_S seconds."""
    from localdev.fakes.openai_server import FakeAzureOpenAI, Reply

    fake = FakeAzureOpenAI()
    fake.enqueue(*(Reply.slow(LLM_DELAY_S) for _ in range(failures)))
    return fake.start()


def _child(children: list[subprocess.Popen], args: list[str], stdin: bool = False) -> dict[str, Any]:
    """Start `python args` from the project root; its first stdout line is JSON."""
    process = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                               stdin=subprocess.PIPE if stdin else subprocess.DEVNULL)
    children.append(process)
    line = process.stdout.readline() if process.stdout else ""
    if not line:
        raise RuntimeError(f"{' '.join(args)} exited before it was ready (code {process.wait()})")
    return json.loads(line)


def _get_json(url: str, token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(url, headers=headers, timeout=10).json()


def _by_table(tables: dict[str, int]) -> dict[str, int]:
    out: Counter = Counter()
    for key, n in tables.items():
        out[key.split(" ")[0]] += n
    return dict(sorted(out.items()))


def _ts(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _pct(values: list[float], p: int) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))], 3)


def format_table(figures: dict[str, Any]) -> str:
    """The figures of one run as a small text table."""
    f = figures
    rows = [
        ("failures decided", f"{f['decided']} / {f['failures']}"
         + (f" ({f['unsure_fraction']:.0%} unsure, model {LLM_DELAY_S:g} s)" if f["unsure_fraction"] else "")),
        ("time to decide the burst", f"{f['seconds_to_decide_burst']} s (webhooks sent in "
                                     f"{f['seconds_to_send_burst']} s, {f['webhook_deliveries_retried']} "
                                     "deliveries retried)"),
        ("failures / hour", f"{f['failures_per_hour']:,}"),
        ("bound / hour", f"{f['bound_per_hour']:,} = {f['concurrency']} in flight ({f['concurrency_from']}) "
                         f"÷ ({f['jobs_api_calls_per_failure']} calls × {f['jobs_api_latency_s']} s) × 3600"
         if f["bound_per_hour"] else "n/a"),
        ("fraction of the bound", f"{f['fraction_of_bound']}"),
        ("webhook → done p50 / p99", f"{f['webhook_to_action_s']['p50']} s / {f['webhook_to_action_s']['p99']} s"),
        ("webhook → decision p50 / p99", f"{f['webhook_to_decision_s']['p50']} s / "
                                         f"{f['webhook_to_decision_s']['p99']} s"),
        ("Jobs API calls / failure", f"{f['jobs_api_calls_per_failure']}  "
         + ", ".join(f"{k.split(' ', 1)[1]} {v}" for k, v in f["jobs_api_calls_by_endpoint"].items())),
        ("Jobs API peak requests / s", f"{f['jobs_api_peak_requests_per_s']} in all; per endpoint (budget): "
         + ", ".join(f"{k.split(' ', 1)[1]} {v['peak']} ({v['budget']:g})"
                     for k, v in f["jobs_api_peak_by_endpoint"].items())
         + ("" if f["peak_within_budgets"] else "  OVER A BUDGET")),
        ("Jobs API budgets' bound / hour", f"{f['budget_bound_per_hour']:,} (fraction {f['fraction_of_budget_bound']})"
         if f["budget_bound_per_hour"] else "n/a"),
        ("Table Storage ops / failure", f"{f['table_ops_per_failure']} (create_table excluded)"),
        ("  by kind (all failures)", ", ".join(f"{k} {v}" for k, v in f["table_ops_by_kind"].items())),
        ("  by kind / failure", ", ".join(f"{k} {v}" for k, v in f["table_ops_per_failure_by_kind"].items())),
        ("  by table", ", ".join(f"{k} {v}" for k, v in f["table_ops_by_table"].items())),
        ("actions", ", ".join(f"{k} {v}" for k, v in sorted(f["actions"].items()))),
    ]
    if "llm_calls" in f:
        rows.append(("model calls", f"{f['llm_calls']}"))
    if "throughput_vs_rules_only" in f:
        rows.append(("throughput vs rules only", f"{f['throughput_vs_rules_only']}"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.bench_pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--failures", type=int, default=1000, help="webhooks in the burst, one per failed run")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added to every Jobs API answer")
    parser.add_argument("--time-limit", type=float, default=600.0, help="hard limit per run, in seconds")
    parser.add_argument("--llm", action="store_true",
                        help=f"also run with 10%% and 100%% unsure failures and a model answering in {LLM_DELAY_S:g} s")
    parser.add_argument("--unsure", type=float, help="only one run, with this fraction (0..1] of unsure failures "
                        f"and the model answering in {LLM_DELAY_S:g} s")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    parser.add_argument("--profile", metavar="FILE", help="cProfile every invocation (per thread), merged into FILE "
                        "(read it with python -m pstats); the figures are slower under the profiler")
    args = parser.parse_args(argv)
    if not 1 <= args.failures <= 10_000 or not 0 <= args.latency <= 5 or not 0 < args.time_limit <= 3600:
        parser.error("--failures 1..10000, --latency 0..5 s, --time-limit up to 3600 s")
    if args.unsure is not None and not 0 < args.unsure <= 1:
        parser.error("--unsure is a fraction in (0, 1]")
    plans = [(0.0, False)] + ([(0.1, True), (1.0, True)] if args.llm else [])
    if args.unsure is not None:
        plans = [(args.unsure, True)]
    results = []
    for unsure, llm in plans:
        if not args.json:
            print(f"Burst of {args.failures} webhooks, {unsure:.0%} unsure ...", file=sys.stderr, flush=True)
        figures = run_bench(args.failures, latency=args.latency, unsure=unsure, llm=llm, time_limit=args.time_limit,
                            profile=f"{args.profile}.{len(results)}" if args.profile and len(plans) > 1
                            else args.profile)
        if results and figures["failures_per_hour"]:
            figures["throughput_vs_rules_only"] = round(figures["failures_per_hour"] / results[0]["failures_per_hour"], 3)
        results.append(figures)
        if not args.json:
            print(format_table(figures) + "\n", flush=True)
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0], indent=2))
    return 0 if all(r["undecided"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
