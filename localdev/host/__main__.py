"""`python -m localdev.host`: the `func start` stand-in for this machine. Run it from the project root.

A test and demo harness, NOT the Azure Functions host: no scaling, no dynamic concurrency, no retry policies,
no key management (one host key, random unless LOCAL_FUNCTIONS_HOST_KEY is set), no CRON schedule (timers run
with --timer-interval, or not at all). Where Azure Functions Core Tools are installed, `func start` with
Azurite is the real local way, and the app runs under it unchanged.

What it does, in the order `func start` does it:
1. reads local.settings.json: `Values` go into the environment (a variable already set keeps its value),
   `Host.LocalHttpPort` is the port (default 7071; --port overrides, 0 picks a free one);
2. storage: if AzureWebJobsStorage is not set, or --azurite is given, starts a fresh Azurite on free ports and
   points AzureWebJobsStorage at it; if it names the local emulator (UseDevelopmentStorage=true, or loopback
   endpoints) and nothing listens there, starts Azurite on those ports with its data in .azurite/; if storage
   cannot be reached, says so at once;
3. for this project (shared/settings beside function_app.py), checks every setting as the app will and stops
   with the doctor's table if one is wrong (--no-check-settings skips it);
4. imports function_app from the project root, reads host.json, prints the functions and their URLs;
5. serves until Ctrl-C (or SIGTERM), then stops within about two seconds: an invocation still running is
   abandoned, and its message comes back once its lease expires, as after a host restart.
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

from localdev.azurite import Azurite, emulator_ports, start_azurite
from localdev.host.core import LocalFunctionsHost
from localdev.host.exceptions import LocalHostError
from localdev.host.loader import LocalSettings, load_app, read_host_json
from localdev.ports import is_listening

KEY_VARIABLE = "LOCAL_FUNCTIONS_HOST_KEY"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m localdev.host", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="project root (default: current directory)")
    parser.add_argument("--port", type=int, help="HTTP port (default: Host.LocalHttpPort, else 7071)")
    parser.add_argument("--azurite", action="store_true", help="start a fresh Azurite for this run")
    parser.add_argument("--timer-interval", type=float, help="run every timer function every N seconds")
    parser.add_argument("--settings", type=Path, help="the settings file (default: ROOT/local.settings.json)")
    parser.add_argument("--check-settings", action=argparse.BooleanOptionalAction, default=None,
                        help="check the app's settings before starting (default: when ROOT has shared/settings)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)  # the SDKs log every storage request at INFO
    root = args.root.resolve()
    settings_file = args.settings or root / "local.settings.json"
    try:
        settings = LocalSettings.read(settings_file)
    except (OSError, ValueError) as exc:
        print(f"cannot read {settings_file}: {exc}", file=sys.stderr)
        return 2
    settings.apply(os.environ)
    check = args.check_settings if args.check_settings is not None else (root / "shared" / "settings").is_dir()
    if check and not _settings_ready(settings_file if settings_file.exists() else None):
        return 2
    try:
        azurite = _storage(args.azurite, root)
    except (OSError, TimeoutError) as exc:
        print(f"could not start Azurite: {exc}", file=sys.stderr)
        return 2
    try:
        chosen_key = os.environ.get(KEY_VARIABLE)
        host = LocalFunctionsHost(
            load_app(root), os.environ["AzureWebJobsStorage"], read_host_json(root), os.environ,
            http_port=_first_set(args.port, settings.http_port, 7071), host_key=chosen_key)
        host.start(timer_interval_seconds=args.timer_interval)
        _print_functions(host, args.timer_interval, show_key=not chosen_key)
        _wait_for_signal()
        if not _stop_within(host, STOP_SECONDS):
            print("an invocation was still running and is abandoned: its message comes back once its lease "
                  "expires", flush=True)
            if azurite is not None:
                azurite.stop(timeout=0.5)
            sys.stdout.flush()
            os._exit(0)  # the abandoned worker thread would otherwise hold the interpreter open
    except LocalHostError as exc:
        print(f"cannot run the functions: {exc}", file=sys.stderr)
        return 2
    finally:
        if azurite is not None:
            azurite.stop(timeout=0.5)
    return 0


# Ctrl-C: how long running invocations get to finish before they are abandoned (their messages come back).
STOP_SECONDS = 1.0


def _storage(fresh: bool, root: Path) -> Azurite | None:
    """Start the Azurite this run needs, if any, and say which storage it uses."""
    configured = os.environ.get("AzureWebJobsStorage")
    if fresh or not configured:
        azurite = start_azurite()
        os.environ["AzureWebJobsStorage"] = azurite.connection_string
        print(f"Azurite started for this run (queues on 127.0.0.1:{azurite.queue_port}, data in memory)")
        return azurite
    ports = emulator_ports(configured)
    if ports is None:
        return None  # a real account: the listener reports it within seconds if it cannot be reached
    if is_listening(ports[1]):
        print(f"Using the storage emulator already listening on 127.0.0.1:{ports[1]}")
        return None
    azurite = start_azurite(ports=ports, location=root / ".azurite")
    print(f"Azurite started on 127.0.0.1:{ports[0]}-{ports[2]} (AzureWebJobsStorage is the local emulator and "
          "nothing listened there); data in .azurite/")
    return azurite


def _settings_ready(settings_file: Path | None) -> bool:
    """Check the app's settings as it will read them; print the doctor's table and return False on a problem."""
    from shared.commands.preflight import problems_table
    from shared.settings import FEATURES, check_settings

    env = dict(os.environ)
    env.setdefault("AzureWebJobsStorage", "UseDevelopmentStorage=true")  # unset: this run starts its own Azurite
    found, problems = check_settings(env, require=FEATURES)
    fatal = [p for p in problems if p.fatal]
    if not fatal:
        return True
    source = f"{settings_file} + the environment (wins over the file)" if settings_file else "the environment"
    sys.stderr.write(problems_table(env, found, fatal, source))
    sys.stderr.write("\nThe functions would refuse every event with these settings: fix them and start again "
                     "(python -m shared doctor checks the connections too).\n")
    return False


def _stop_within(host: LocalFunctionsHost, seconds: float) -> bool:
    """Stop the host, waiting at most `seconds` for running invocations; False if one is still running."""
    stopper = threading.Thread(target=host.stop, name="stop", daemon=True)
    stopper.start()
    stopper.join(seconds)
    return not stopper.is_alive()


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
