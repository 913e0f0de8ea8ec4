"""Run the simulator standalone: `python -m localdev.databricks_sim --port 8765 --token dapi-sim --scenario demo`.

Faults can be set at start (`--fault '{"kinds": ["throttle", "lost_drop"], "fraction": 0.2, "seed": 1}'`, repeatable)
or later through POST /sim/faults; GET /sim/stats reports the per-endpoint counts.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading

from localdev.databricks_sim.scenarios import load_demo_workspace
from localdev.databricks_sim.simulator import DatabricksSimulator


def main(argv: list[str] | None = None) -> int:
    """Start, load the scenario, print the URL and the scenario's ids as JSON, serve until Ctrl-C / SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m localdev.databricks_sim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--token", default="dapi-sim", help="the bearer token clients must send")
    parser.add_argument("--scenario", choices=["empty", "demo"], default="demo")
    parser.add_argument("--page-size", type=int, default=100, help="items per page of runs/get and jobs/get arrays")
    parser.add_argument("--rerun-seconds", type=float, default=0.0, help="how long a repair or run-now stays RUNNING")
    parser.add_argument("--webhook-url", help="POST jobs.on_failure webhooks here")
    parser.add_argument("--shapes", action="store_true", help="with --scenario demo: add the for_each and run_job jobs")
    parser.add_argument("--busy-runs", type=int, default=0, help="this many extra finished runs in the last 12 h")
    parser.add_argument("--fault", action="append", default=[], metavar="JSON",
                        help='an injection rule, e.g. {"kinds": ["throttle"], "fraction": 0.2, "seed": 1}')
    parser.add_argument("--service-principal", metavar="CLIENT_ID:SECRET",
                        help="a service principal that may get OAuth tokens from /oidc/v1/token")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s %(message)s")

    sim = DatabricksSimulator(token=args.token, host=args.host, port=args.port, page_size=args.page_size)
    sim.rerun_seconds = args.rerun_seconds
    url = sim.start()
    if args.webhook_url:
        sim.send_webhooks_to(args.webhook_url)
    scenarios = load_demo_workspace(sim, shapes=args.shapes) if args.scenario == "demo" else {}
    if args.busy_runs:
        sim.add_busy_runs(args.busy_runs)
    for rule in args.fault:
        options = json.loads(rule)
        sim.inject(options.pop("kinds"), **options)
    if args.service_principal:
        client_id, _, secret = args.service_principal.partition(":")
        sim.add_service_principal(client_id, secret)
    print(json.dumps({"url": url, "scenarios": {k: {"job_id": j, "run_id": r} for k, (j, r) in scenarios.items()}}),
          flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
