"""`python -m localdev.host`: the `func start` stand-in for this machine. Run it from the project root.

A test and demo harness, NOT the Azure Functions host: no scaling, no dynamic concurrency, no retry policies,
no key management (one host key, random unless LOCAL_FUNCTIONS_HOST_KEY is set), no CRON schedule (timers run
with --timer-interval, or not at all). Where Azure Functions Core Tools are installed, `func start` with
Azurite is the real local way, and the app runs under it unchanged.

What it does, in the order `func start` does it:
1. reads local.settings.json: `Values` go into the environment (a variable already set keeps its value),
   `Host.LocalHttpPort` is the port (default 7071; --port overrides, 0 picks a free one);
2. if AzureWebJobsStorage is not set, or --azurite is given, starts Azurite on free ports and points
   AzureWebJobsStorage at it;
3. imports function_app from the project root, reads host.json, prints the functions and their URLs;
4. serves until Ctrl-C (or SIGTERM), then stops cleanly.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from localdev.azurite import start_azurite
from localdev.host.core import LocalFunctionsHost
from localdev.host.loader import LocalSettings, load_app, read_host_json

KEY_VARIABLE = "LOCAL_FUNCTIONS_HOST_KEY"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m localdev.host", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="project root (default: current directory)")
    parser.add_argument("--port", type=int, help="HTTP port (default: Host.LocalHttpPort, else 7071)")
    parser.add_argument("--azurite", action="store_true", help="start a fresh Azurite for this run")
    parser.add_argument("--timer-interval", type=float, help="run every timer function every N seconds")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)  # the SDKs log every storage request at INFO
    root = args.root.resolve()
    settings = LocalSettings.read(root / "local.settings.json")
    settings.apply(os.environ)
    azurite = None
    if args.azurite or not os.environ.get("AzureWebJobsStorage"):
        azurite = start_azurite()
        os.environ["AzureWebJobsStorage"] = azurite.connection_string
        print(f"Azurite started (queues on 127.0.0.1:{azurite.queue_port})")
    chosen_key = os.environ.get(KEY_VARIABLE)
    try:
        host = LocalFunctionsHost(
            load_app(root), os.environ["AzureWebJobsStorage"], read_host_json(root), os.environ,
            http_port=_first_set(args.port, settings.http_port, 7071), host_key=chosen_key)
        host.start(timer_interval_seconds=args.timer_interval)
        try:
            _print_functions(host, args.timer_interval, show_key=not chosen_key)
            _wait_for_signal()
        finally:
            host.stop()
    finally:
        if azurite is not None:
            azurite.stop()
    return 0


def _first_set(*ports: int | None) -> int:
    return next(port for port in ports if port is not None)


def _print_functions(host: LocalFunctionsHost, timer_interval: float | None, show_key: bool) -> None:
    print("\nFunctions (local test harness, not the Functions host):\n")
    for name, spec in host.functions.items():
        if spec.trigger == "http":
            methods = ",".join(spec.methods or ("any method",))
            print(f"  {name}: [{methods}] {host.function_url(name)}  (auth {spec.auth_level.lower()})")
        elif spec.trigger == "queue":
            print(f"  {name}: queueTrigger on {spec.queue_name}")
        else:
            when = f"every {timer_interval:g} s here" if timer_interval else "not scheduled here"
            print(f"  {name}: timerTrigger {spec.schedule} ({when})")
    if show_key:
        # A random key made for this run on loopback, printed so that it can be used; set the variable to choose it.
        print(f"\nFunction-level routes need ?code= or x-functions-key: this run's key is {host.host_key} "
              f"(set {KEY_VARIABLE} to choose one)")
    print("\nPress Ctrl-C to stop.", flush=True)


def _wait_for_signal() -> None:
    """Block until Ctrl-C or SIGTERM. A second signal while stopping interrupts the shutdown itself."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    stop.wait()
    print("Stopping...", flush=True)

if __name__ == "__main__":
    sys.exit(main())
