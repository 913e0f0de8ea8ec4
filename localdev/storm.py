"""`make storm`: 200 jobs failing within a minute from one cloud outage that lasts two minutes, through the whole
agent, and what it did about it.

Starts Azurite, an SMTP sink (aiosmtpd), the Slack/PagerDuty fakes (localdev/fakes/chat_webhooks.py), the
Databricks simulator (webhooks on, reruns RUNNING for a few seconds) and function_app in the local runner, its
timer every few seconds. Then a cloud outage starts in the simulator (POST /sim/outage: every cluster launch
fails with CLOUD_PROVIDER_LAUNCH_FAILURE, Azure SkuNotAvailable) and the jobs' scheduled runs start, spread
over the first minute, each failing to launch its cluster; the simulator sends each failure's webhook as
Databricks does, and every failed rerun sends another. After the outage, reruns succeed. The run ends when
every job has succeeded again, or the agent and the workspace have been quiet for a while, or the time limit.

Figures and checks (localdev/storm_figures.py), read from the outside: the SMTP sink and the chat fakes (notifications
per recipient list), the simulator's runs and request log (repairs and run-nows started during the outage per
minute, jobs rerun and succeeded after it, peak Jobs API requests per second) and the decisions table (one
decision per failed run or rerun; no run repaired more often than it was decided to be). Loopback only.

    python -m localdev.storm [--jobs 200 --spread 60 --outage 120] [--json] [--set INCIDENT_CANARY_BACKOFF_SECONDS=5]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
USER, PASSWORD = "databricks", "storm-webhook-password"
TOKEN = "dapi-storm-0000000000000000000000000000"
TEAMS = ("sales-data@contoso.example", "finance-data@contoso.example", "crm-data@contoso.example",
         "supply-data@contoso.example")
ONCALL = "data-oncall@contoso.example"
CLUSTER = {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_DS3_v2", "num_workers": 2}


@dataclass
class StormConfig:
    """One storm. Durations in seconds; `settings` are extra app settings (INCIDENT_* to compress time)."""

    jobs: int = 200
    spread_s: float = 60.0  # the jobs' runs start (and fail) within this long
    outage_s: float = 120.0
    rerun_s: float = 5.0  # how long a repair or run-now stays RUNNING before it ends (fails, during the outage)
    timer_s: float = 5.0  # the app's timer (poller) runs this often
    minute_s: float = 60.0  # the "minute" of "repairs per minute": compressed with the incident settings
    quiet_s: float = 30.0  # after the outage: stop once nothing happened for this long
    time_limit_s: float = 900.0
    # Per endpoint and workspace (the limiter's classes): jobs/get, run-now, repair ...; runs reads; job writes.
    requests_per_second: float = 16.0
    runs_requests_per_second: float = 50.0
    job_writes_per_second: float = 5.0
    settings: dict[str, str] = field(default_factory=dict)


def run_storm(config: StormConfig, sim: Any = None) -> dict[str, Any]:
    """One storm through the local runner; returns the figures and checks (storm_figures.measure)."""
    from localdev.azurite import start_azurite
    from localdev.databricks_sim import DatabricksSimulator
    from localdev.fakes.chat_webhooks import ChatWebhooks

    own_sim = sim is None
    if own_sim:
        sim = DatabricksSimulator(token=TOKEN)
        sim.start()
    sim.allow_token(TOKEN)
    azurite = start_azurite()
    smtp, sink = _smtp()
    try:
        with ChatWebhooks() as chat, tempfile.TemporaryDirectory(prefix="storm-") as tmp:
            return _storm(config, sim, azurite.connection_string, smtp.port, sink, chat, Path(tmp))
    finally:
        smtp.stop()
        azurite.stop()
        if own_sim:
            sim.stop()


def _storm(config: StormConfig, sim: Any, storage: str, smtp_port: int, sink: Any, chat: Any,
           tmp: Path) -> dict[str, Any]:
    from localdev.host import LocalFunctionsHost, load_app, read_host_json
    from localdev.host.settings import app_environment
    from localdev.storm_figures import measure
    from shared import runtime

    env = _environment(config, sim, storage, smtp_port, chat)
    with app_environment(env):  # the worker reads its settings from os.environ
        runtime.reset()
        host_json = read_host_json(ROOT)
        host_json["extensions"]["queues"].update({"visibilityTimeout": "00:00:00", "maxPollingInterval": "00:00:00.200"})
        host = LocalFunctionsHost(load_app(ROOT), storage, host_json=host_json, env=env)
        stop = threading.Event()
        ticker = threading.Thread(target=_tick, args=(sim, stop), name="storm-clock", daemon=True)
        host.start(timer_interval_seconds=config.timer_s)
        ticker.start()
        try:
            sim.send_webhooks_to(f"{host.base_url}/api/databricks/webhook?code={host.host_key}", username=USER,
                                 password=PASSWORD)
            sim.rerun_seconds = config.rerun_s
            jobs = _jobs(sim, config.jobs)
            sim.faults.reset_counts()
            first_request = len(sim.requests)
            outage = sim.start_outage(config.outage_s)
            started = time.monotonic()
            runs = _trigger(sim, jobs, config.spread_s, started)
            ended = _wait(sim, jobs, config, started)
            sim.flush_webhooks()
            # The timer keeps the runner busy, so it is never idle: give the last invocations two ticks instead.
            time.sleep(2 * config.timer_s)
            return measure(config, sim, runs, outage, first_request, sink, chat, ended - started)
        finally:
            stop.set()
            ticker.join(5)
            sim.send_webhooks_to("http://127.0.0.1:9/unused")  # the app is going: no more deliveries to it
            host.stop()
            runtime.reset()


def _environment(config: StormConfig, sim: Any, storage: str, smtp_port: int, chat: Any) -> dict[str, str]:
    from localdev.fakes.chat_webhooks import ROUTING_KEY

    env = {
        "AzureWebJobsStorage": storage,
        "DATABRICKS_WORKSPACE_URL": sim.url,
        "DATABRICKS_PAT_TOKEN": TOKEN,
        "DATABRICKS_WORKSPACE_ID": sim.workspace_id,
        "DATABRICKS_REQUESTS_PER_SECOND": f"{config.requests_per_second:g}",
        "DATABRICKS_RUNS_REQUESTS_PER_SECOND": f"{config.runs_requests_per_second:g}",
        "DATABRICKS_JOB_WRITES_PER_SECOND": f"{config.job_writes_per_second:g}",
        "AGENT_MODE": "act",
        "MAX_RETRIES": "3",
        "POLL_SCHEDULE": "0 */5 * * * *",  # run every timer_s by the runner instead
        "POLL_SETTLE_MINUTES": "0",
        "WEBHOOK_USERNAME": USER,
        "WEBHOOK_PASSWORD": PASSWORD,
        "CLAIM_WAIT_SECONDS": "1",
        "EMAIL_ENABLED": "true",
        "EMAIL_TRANSPORT": "smtp",
        "EMAIL_SMTP_HOST": "127.0.0.1",
        "EMAIL_SMTP_PORT": str(smtp_port),
        "EMAIL_SMTP_SECURITY": "none",
        "EMAIL_SENDER": "agent@contoso.example",
        "EMAIL_DEFAULT_RECIPIENTS": ONCALL,
        "EMAIL_ESCALATION_RECIPIENTS": ONCALL,
        "SLACK_WEBHOOK_SECRET_NAME": "storm-slack-webhook",
        "STORM_SLACK_WEBHOOK": chat.slack_url,
        "PAGERDUTY_ROUTING_KEY_SECRET_NAME": "storm-pagerduty-key",
        "STORM_PAGERDUTY_KEY": ROUTING_KEY,
        "PAGERDUTY_EVENTS_URL": chat.pagerduty_url,
        "NOTIFY_CHANNEL_ROUTES": "escalation=pagerduty,slack;incident=pagerduty,slack;resolved=pagerduty,slack",
        "LOG_LEVEL": "WARNING",
    }
    env.update(config.settings)
    return env


def _smtp() -> tuple[Any, Any]:
    from aiosmtpd.controller import Controller

    from localdev.ports import free_port

    class Sink:
        def __init__(self) -> None:
            self.received: list[tuple[float, list[str], bytes]] = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
            self.received.append((time.monotonic(), list(envelope.rcpt_tos), envelope.original_content))
            return "250 Message accepted for delivery"

    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())  # aiosmtpd cannot take port 0
    controller.start()
    return controller, sink


def _jobs(sim: Any, count: int) -> list[int]:
    """`count` one-task jobs on a job cluster, each owned by one of four teams, each notifying the agent."""
    out = []
    for i in range(count):
        team = TEAMS[i % len(TEAMS)]
        out.append(sim.add_job(
            f"storm_etl_{i:03d}", [{"task_key": "main", "job_cluster_key": "etl", "timeout_seconds": 3600,
                                    "notebook_task": {"notebook_path": f"/Repos/etl/load_{i:03d}"}}],
            job_clusters=[{"job_cluster_key": "etl", "new_cluster": dict(CLUSTER)}], owner=team,
            email_notifications={"on_failure": [team]}, tags={"team": team.split("@")[0]},
            webhook_notifications={"on_failure": [{"id": "ai-agent"}]}))
    return out


def _trigger(sim: Any, jobs: list[int], spread_s: float, started: float) -> dict[int, int]:
    """The jobs' scheduled runs, spread evenly over `spread_s`: job id -> run id."""
    runs = {}
    for i, job in enumerate(jobs):
        delay = started + spread_s * i / max(len(jobs), 1) - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        runs[job] = sim.trigger_run(job)
    return runs


def _wait(sim: Any, jobs: list[int], config: StormConfig, started: float) -> float:
    """Until every job's latest run succeeded, or quiet after the outage, or the time limit; returns when."""
    seen, quiet_since = -1, time.monotonic()
    while time.monotonic() - started < config.time_limit_s:
        time.sleep(0.5)
        if all(_latest_succeeded(sim, job) for job in jobs):
            return time.monotonic()
        # Quiet: no rerun asked for and no failure announced (the timer's reads go on regardless).
        count = sum(1 for r in sim.requests if r.method == "POST") + len(sim.webhook_deliveries)
        if count != seen:
            seen, quiet_since = count, time.monotonic()
        over = time.monotonic() - started > max(config.outage_s, config.spread_s)
        if over and time.monotonic() - quiet_since > config.quiet_s:
            if not _held():
                return time.monotonic()
            quiet_since = time.monotonic()  # reruns held by an incident wait for its canary: not over yet
    return time.monotonic()


def _held() -> int:
    """Decision records whose rerun an incident still holds (status "held")."""
    from shared import runtime
    from shared.wiring import table

    settings = runtime.settings()
    rows = table(settings, settings.decisions_table).query_entities("status eq 'held'", select=["RowKey"])
    return sum(1 for _ in rows)


def _latest_succeeded(sim: Any, job: int) -> bool:
    with sim.workspace.lock:
        runs = [r for r in sim.workspace.runs.values() if r.job_id == job]
        return bool(runs) and max(runs, key=lambda r: r.run_id).result_state == "SUCCESS"


def _tick(sim: Any, stop: threading.Event) -> None:
    # Reruns end on the workspace clock; without a request to the simulator nothing would end them.
    while not stop.wait(0.2):
        with sim.workspace.lock:
            sim.workspace.tick()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.storm", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--spread", type=float, default=60.0, help="the runs fail within this many seconds")
    parser.add_argument("--outage", type=float, default=120.0, help="seconds the cloud outage lasts")
    parser.add_argument("--rerun", type=float, default=5.0, help="seconds a rerun stays RUNNING")
    parser.add_argument("--minute", type=float, default=60.0, help="the 'minute' of repairs per minute")
    parser.add_argument("--quiet", type=float, default=30.0, help="after the outage, stop after this long quiet")
    parser.add_argument("--time-limit", type=float, default=900.0)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="an app setting")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    args = parser.parse_args(argv)
    if not 1 <= args.jobs <= 2000 or not 0 < args.outage <= 3600 or not 0 <= args.spread <= 3600 \
            or not 0 < args.time_limit <= 7200:
        parser.error("--jobs 1..2000, --outage up to 3600 s, --spread up to 3600 s, --time-limit up to 7200 s")
    settings = dict(item.split("=", 1) for item in args.set if "=" in item)
    config = StormConfig(jobs=args.jobs, spread_s=args.spread, outage_s=args.outage, rerun_s=args.rerun,
                         minute_s=args.minute, quiet_s=args.quiet, time_limit_s=args.time_limit, settings=settings)
    import logging

    logging.basicConfig(level=logging.CRITICAL)
    if not args.json:
        print(f"Storm: {config.jobs} jobs failing within {config.spread_s:g} s, outage {config.outage_s:g} s ...",
              file=sys.stderr, flush=True)
    figures = run_storm(config)
    if args.json:
        print(json.dumps(figures, indent=2, default=str))
    else:
        from localdev.storm_figures import format_report

        print(format_report(figures))
    return 0 if all(check["ok"] for check in figures["checks"]) else 1


if __name__ == "__main__":
    sys.exit(main())
