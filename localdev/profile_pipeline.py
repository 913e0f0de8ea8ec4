"""Where a worker's CPU goes: the pipeline in-process under cProfile, on Azurite and the simulator (no added latency).

    python -m localdev.profile_pipeline [--failures 300] [--top 25]

Runs `process` for N failures of the bench's mix (localdev/bench_workload.py, the simulator in its own process,
answering at once) one after another, with logging at INFO through the redaction filter as the worker has it,
and prints the worker's CPU time per failure, the share of it spent in a few known costs (requests reading the
environment on each call, the redaction log filter, Table Storage calls, the Jobs API calls) and the top
functions by own CPU time. Waiting (sockets, sleeps) is not counted. Loopback only; a developer tool.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import pstats
import sys
import tempfile
import time

# (label, how to find it in the profile: file fragment, function name) — cumulative time of the outermost frame.
COSTS = (
    ("requests reading the environment per call (merge_environment_settings)", "requests/sessions.py",
     "merge_environment_settings"),
    ("requests netrc lookup per call (get_netrc_auth)", "requests/utils.py", "get_netrc_auth"),
    ("redaction log filter (RedactingFilter.filter)", "shared/redaction.py", "filter"),
    ("Table Storage calls (azure.core pipeline run)", "azure/core/pipeline/_base.py", "run"),
    ("Jobs API calls (DatabricksClient._call)", "shared/databricks/client.py", "_call"),
)


def profile(failures: int, top: int, log_out: str | None = None, sdk_request_logs: bool = False) -> str:
    from localdev.azurite import start_azurite
    from localdev.bench_pipeline import _child
    from shared.completion import new_invocation_id
    from shared.events import FailureEvent
    from shared.pipeline import process
    from shared.redaction import install_redaction, uninstall_redaction
    from shared.runtime import _SDK_REQUEST_LOGGER, quiet_sdk_request_logs
    from shared.settings import Settings
    from shared.wiring import build_deps

    azurite, children = start_azurite(), []
    root, sink = logging.getLogger(), io.StringIO()
    handler = logging.StreamHandler(sink)
    saved_level = root.level
    try:
        sim = _child(children, ["-m", "localdev.bench_workload", "--failures", str(failures), "--latency", "0"],
                     stdin=True)
        with tempfile.TemporaryDirectory(prefix="profile-emails-") as emails:
            settings = Settings(
                storage_connection_string=azurite.connection_string, databricks_workspace_url=sim["url"],
                databricks_pat_token=sim["token"], databricks_workspace_id=sim["workspace_id"], agent_mode="act",
                email_enabled=True, email_transport="file", email_file_dir=emails,
                email_sender="agent@contoso.example", email_default_recipients=["oncall@contoso.example"],
                databricks_requests_per_second=1000, databricks_request_burst=1000,  # CPU, not the limiter's waits
            )
            deps = build_deps(settings)
            root.addHandler(handler)
            root.setLevel(logging.INFO)  # the worker's default: every decision logs a few INFO lines
            if not sdk_request_logs:
                quiet_sdk_request_logs("INFO")  # as shared.runtime configures the worker
            install_redaction()
            profiler = cProfile.Profile(time.process_time)
            started = time.process_time()
            profiler.enable()
            for job_id, run_id, _ in sim["failures"]:
                process(FailureEvent(workspace_id=sim["workspace_id"], job_id=job_id, run_id=run_id), deps,
                        owner=new_invocation_id())
            profiler.disable()
            elapsed = time.process_time() - started
            uninstall_redaction()
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_level)
        logging.getLogger(_SDK_REQUEST_LOGGER).setLevel(logging.NOTSET)
        if log_out:
            with open(log_out, "w", encoding="utf-8") as out:
                out.write(sink.getvalue())
        for child in children:
            child.stdin.close()
            child.terminate()
            child.wait(timeout=10)
        azurite.stop()
    return report(profiler, elapsed, failures, top)


def report(profiler: cProfile.Profile, elapsed: float, failures: int, top: int) -> str:
    stats = pstats.Stats(profiler)
    total = max(stats.total_tt, 1e-9)  # type: ignore[attr-defined]
    lines = [f"{failures} failures: {elapsed:.2f} s of the worker's CPU ({1000 * elapsed / failures:.1f} ms each)"]
    for label, where, name in COSTS:
        cumulative = sum(value[3] for (path, _, function), value in stats.stats.items()  # type: ignore[attr-defined]
                         if function == name and where in path.replace("\\", "/"))
        # Recursive/nested entries of the same function are counted once by cProfile's cumulative time.
        lines.append(f"  {cumulative / total:6.1%}  {label}")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    lines.append(out.getvalue().split("\n", 6)[-1] if out.getvalue() else "")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.profile_pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--failures", type=int, default=300, help="failures processed one after another")
    parser.add_argument("--top", type=int, default=25, help="functions listed, by own time")
    parser.add_argument("--log-out", help="write the log lines the run produced to this file")
    parser.add_argument("--sdk-request-logs", action="store_true",
                        help="leave the Azure SDK's per-request INFO log on (as it was before shared.runtime quieted it)")
    args = parser.parse_args(argv)
    if not 1 <= args.failures <= 5000:
        parser.error("--failures 1..5000")
    print(profile(args.failures, args.top, args.log_out, args.sdk_request_logs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
