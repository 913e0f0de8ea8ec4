"""Exactly once under faults: many failures through the real pipeline and Jobs API client, against the simulator
with ~20% of its answers refused, failed, slowed or lost after taking effect.

    python -m localdev.fault_soak                      # 1,000 failures, prints the figures, exits 1 on a problem
    python -m localdev.fault_soak --failures 300 --fault-fraction 0.3 --seed 7

Each failure is one failed run of its own job: transient (a rerun), out of memory on a job cluster (a resize,
then a rerun, then the revert; the cluster's spark_conf holds a plaintext key), a permission error or a code
error (an email). Some messages are delivered twice at once. Workers process an in-memory queue with the
Functions host's redelivery rules (5 tries, then poison) while the timer ticks beside them (its follow-ups
race their saves); then the timer runs until every rerun is followed.
The figures: every failure decided exactly once, no run repaired twice, no job updated twice in one
direction, no record left unfinished, every resized cluster back to its spec byte for byte, each email sent
at most once. The fast version of this run is tests/integration/test_exactly_once_faults.py.
"""

from __future__ import annotations

import argparse
import copy
import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from localdev.databricks_sim import DatabricksSimulator
from localdev.databricks_sim.model import TaskFailure

SIM_TOKEN = "dapi-fault-soak"
SECRET = "Fa+lt/S0ak=PlaintextAccountKey=="
CLUSTER = {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_DS3_v2", "num_workers": 2,
           "spark_conf": {"fs.azure.account.key.soak.dfs.core.windows.net": SECRET,
                          "spark.sql.shuffle.partitions": "200"}}
KINDS = {
    "transient": "java.net.SocketTimeoutException: Read timed out",
    "oom": ("org.apache.spark.SparkException: Job aborted due to stage failure: Task 3 in stage 7.0 failed 4 "
            "times, most recent failure: java.lang.OutOfMemoryError: Java heap space"),
    "permission": ("[INSUFFICIENT_PERMISSIONS] Insufficient privileges: User does not have SELECT on Table "
                   "'main.finance.gl_entries'. SQLSTATE: 42501"),
    "code": "[UNRESOLVED_COLUMN.WITH_SUGGESTION] A column `amout` cannot be resolved. SQLSTATE: 42703",
}
# Lost answers (the action took effect), refusals, 500s; and slow answers that still arrive in time.
LOSSY = ("throttle", "throttle_bare", "error", "unavailable", "lost_drop", "lost_500", "lost_stall")
# The 400s Databricks' SDK retries by text or code; the client retries them too (shapes' retryable refusals).
RETRYABLE_400S = ("lock", "unexpected", "faster")
MAX_DEQUEUE = 5
EXPECTED = {"transient": "RETRY", "oom": "RETRY_WITH_NEW_PARAMS", "permission": "SEND_EMAIL", "code": "SEND_EMAIL"}


@dataclass
class SoakConfig:
    failures: int = 1000
    fault_fraction: float = 0.2
    seed: int = 1
    workers: int = 4
    duplicate_fraction: float = 0.1
    timeout_s: float = 0.25  # the client's read timeout; lost_stall answers come later than this
    delay_scale: float = 0.02  # queue delays (deferrals, redeliveries) shortened by this factor
    max_rounds: int = 8
    kinds: tuple[str, ...] = LOSSY + RETRYABLE_400S
    timer_during_burst: bool = True
    timer_interval_s: float = 0.25


@dataclass
class SoakReport:
    failures: int = 0
    kinds: Counter = field(default_factory=Counter)
    deliveries: int = 0
    redeliveries: int = 0
    poisoned: int = 0
    timer_ticks: int = 0
    timer_errors: int = 0
    injected: Counter = field(default_factory=Counter)
    requests: int = 0
    decisions: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    repairs_applied: int = 0
    updates_applied: int = 0
    reverted: int = 0
    emails: int = 0
    seconds: float = 0.0
    not_decided_once: list[int] = field(default_factory=list)
    double_repairs: list[int] = field(default_factory=list)
    double_updates: list[int] = field(default_factory=list)
    left_unfinished: list[str] = field(default_factory=list)
    cluster_not_restored: list[int] = field(default_factory=list)
    double_emails: list[str] = field(default_factory=list)
    wrong_action: list[int] = field(default_factory=list)

    def problems(self) -> list[str]:
        checks = {"failures not decided exactly once": self.not_decided_once, "runs repaired twice": self.double_repairs,
                  "jobs updated twice in one direction": self.double_updates,
                  "records left unfinished": self.left_unfinished,
                  "resized clusters not back to their spec": self.cluster_not_restored,
                  "notifications emailed twice": self.double_emails,
                  "failures not acted on as decided (no rerun, or a refusal that was not one)": self.wrong_action}
        out = [f"{name}: {len(items)} ({items[:5]})" for name, items in checks.items() if items]
        if self.poisoned:
            out.append(f"messages poisoned: {self.poisoned}")
        return out

    def text(self) -> str:
        faults = sum(self.injected.values())
        lines = [
            f"failures            {self.failures} ({', '.join(f'{k} {n}' for k, n in sorted(self.kinds.items()))})",
            f"deliveries          {self.deliveries} ({self.redeliveries} redeliveries after an error, "
            f"{self.poisoned} poisoned); timer ticks during the burst {self.timer_ticks}",
            f"Jobs API requests   {self.requests}; faults injected {faults} "
            f"({faults / max(self.requests, 1):.0%}): " + ", ".join(f"{k} {n}" for k, n in self.injected.most_common()),
            f"decisions           {sum(self.decisions.values())}: "
            + ", ".join(f"{k} {n}" for k, n in sorted(self.decisions.items())),
            f"record states       " + ", ".join(f"{k} {n}" for k, n in sorted(self.statuses.items())),
            f"repairs applied     {self.repairs_applied}; jobs/update applied {self.updates_applied} "
            f"(resizes reverted: {self.reverted}); emails sent {self.emails}",
            f"exactly once        decided once: {self.failures - len(self.not_decided_once)}/{self.failures}; "
            f"double repairs {len(self.double_repairs)}; double jobs/update {len(self.double_updates)}; "
            f"left unfinished {len(self.left_unfinished)}; clusters not restored {len(self.cluster_not_restored)}; "
            f"double emails {len(self.double_emails)}; wrong action {len(self.wrong_action)}",
            f"time                {self.seconds:.1f} s",
        ]
        return "\n".join(lines)


class _Queue:
    """The job-failures queue: visibility delays, dequeue counts (host.json: 5 tries, then poison)."""

    def __init__(self, scale: float) -> None:
        self._lock = threading.Lock()
        self._items: list[tuple[float, int, str, int]] = []
        self._ids = iter(range(1, 10**9))
        self.scale = scale
        self.in_flight = 0

    def put(self, body: str, delay: float = 0.0, dequeue: int = 0) -> None:
        with self._lock:
            self._items.append((time.monotonic() + delay * self.scale, next(self._ids), body, dequeue))

    def take(self) -> tuple[int, str, int] | None:
        with self._lock:
            now = time.monotonic()
            for i, (at, mid, body, dequeue) in enumerate(self._items):
                if at <= now:
                    del self._items[i]
                    self.in_flight += 1
                    return mid, body, dequeue + 1
        return None

    def done(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def idle(self) -> bool:
        with self._lock:
            return not self._items and self.in_flight == 0


class _CountingTransport:
    """Counts every send per notification id (what a recipient would receive)."""

    name = "counting"

    def __init__(self) -> None:
        self.sent: Counter = Counter()
        self._lock = threading.Lock()

    def send(self, email: Any) -> Any:
        from shared.notify.transports.base import SendResult

        with self._lock:
            self.sent[email.id] += 1
        return SendResult(self.name, provider_id=email.id)

    def describe(self) -> str:
        return self.name


def build(sim: DatabricksSimulator, config: SoakConfig, queue: _Queue) -> tuple[Any, _CountingTransport]:
    """Pipeline dependencies on the simulator (a fast-retrying client per thread), in-memory tables."""
    from shared.classify import classify
    from shared.databricks.auth import PatToken
    from shared.databricks.client import DatabricksClient, RetryPolicy
    from shared.notify.notifier import Notifier
    from shared.notify.outbox import MemoryOutbox
    from shared.pipeline import PipelineDeps
    from shared.settings import Settings
    from shared.state import MemoryStateStore
    from shared.store import MemoryDecisionStore
    from shared.workspaces import resolve_workspace, workspace_key

    settings = Settings(
        databricks_workspace_url=sim.url, databricks_pat_token=SIM_TOKEN, databricks_workspace_id=sim.workspace_id,
        email_enabled=True, email_sender="agent@contoso.example", email_default_recipients=["oncall@contoso.example"],
        email_max_per_recipient_per_hour=0, email_repeat_window_minutes=0, claim_wait_seconds=1,
        resize_allowed_spark_conf=["spark.sql.shuffle.partitions"],
    )
    local = threading.local()
    policy = RetryPolicy(retries=3, backoff_factor=0.0, jitter=0.0, default_retry_after=0.0, budget=30.0)

    def jobs_api(workspace_id: str | None) -> Any:
        if not hasattr(local, "client"):
            local.client = DatabricksClient(sim.url, PatToken(SIM_TOKEN), timeout=config.timeout_s,
                                            connect_timeout=1.0, retry=policy, sleep=lambda s: None)
        return local.client

    transport = _CountingTransport()
    deps = PipelineDeps(
        settings=settings, jobs_api=jobs_api,
        workspace_key=lambda wid: workspace_key(resolve_workspace(settings, wid)),
        store=MemoryDecisionStore(lease=timedelta(minutes=10)), state=MemoryStateStore(),
        notifier=Notifier(settings, MemoryOutbox(), transport),  # type: ignore[arg-type]
        classify=classify, enqueue=lambda event, delay: queue.put(event.to_message(), delay),
    )
    return deps, transport


def run_soak(config: SoakConfig, log: Any = None) -> SoakReport:
    """One soak run; the report's problems() is empty when every guarantee held."""
    from shared.completion import finish_unfinished
    from shared.events import FailureEvent
    from shared.pipeline import read_job
    from shared.poller import poll
    from shared.worker import handle_message

    report = SoakReport(failures=config.failures)
    rng = random.Random(config.seed)
    sim = DatabricksSimulator(token=SIM_TOKEN)
    sim.start()
    started = time.monotonic()
    try:
        updates: list[tuple[int, dict[str, Any]]] = []
        original_update = sim.workspace.update_job

        def counting_update(job_id: Any, new_settings: dict[str, Any], fields_to_remove: Any = ()) -> None:
            original_update(job_id, new_settings, fields_to_remove)
            updates.append((int(job_id), copy.deepcopy(new_settings)))

        sim.workspace.update_job = counting_update  # type: ignore[method-assign]
        failures: dict[int, tuple[int, str]] = {}
        for i in range(config.failures):
            kind = list(KINDS)[i % len(KINDS)]
            job = sim.add_job(f"soak_{kind}_{i}", [{"task_key": "main", "notebook_task": {"notebook_path": "/x"},
                                                    "job_cluster_key": "etl"}],
                              job_clusters=[{"job_cluster_key": "etl", "new_cluster": copy.deepcopy(CLUSTER)}])
            failures[sim.fail_run(job, {"main": TaskFailure(error=KINDS[kind])})] = (job, kind)
            report.kinds[kind] += 1

        queue = _Queue(config.delay_scale)
        deps, transport = build(sim, config, queue)
        sim.inject(config.kinds, fraction=config.fault_fraction * 0.85, seed=config.seed, retry_after=0,
                   stall_s=config.timeout_s * 2)
        sim.inject("stall", fraction=config.fault_fraction * 0.15 / (1 - config.fault_fraction * 0.85),
                   seed=config.seed + 1, stall_s=config.timeout_s / 3)
        for run_id, (job, _) in failures.items():
            body = FailureEvent(workspace_id=sim.workspace_id, job_id=job, run_id=run_id).to_message()
            queue.put(body)
            if rng.random() < config.duplicate_fraction:
                queue.put(body)  # the same failure announced twice, processed at the same time

        def worker() -> None:
            idle_since = None
            while True:
                taken = queue.take()
                if taken is None:
                    if queue.idle():
                        idle_since = idle_since or time.monotonic()
                        if time.monotonic() - idle_since > 0.1:
                            return
                    time.sleep(0.005)
                    continue
                idle_since = None
                mid, body, dequeue = taken
                report.deliveries += 1
                try:
                    handled = handle_message(body, message_id=f"m{mid}", dequeue_count=dequeue,
                                             max_dequeue_count=MAX_DEQUEUE, deps=deps)
                    if handled.poison:
                        report.poisoned += 1
                except Exception:  # noqa: BLE001 - what the host does: retry, then poison
                    if dequeue >= MAX_DEQUEUE:
                        report.poisoned += 1
                    else:
                        report.redeliveries += 1
                        queue.put(body, 0.5, dequeue)
                finally:
                    queue.done()

        def drain(with_timer: bool = False) -> None:
            threads = [threading.Thread(target=worker, daemon=True) for _ in range(config.workers)]
            for thread in threads:
                thread.start()
            stop = threading.Event()
            if with_timer:  # the timer ticks while the workers are busy: its follow-ups race their saves
                ticker = threading.Thread(target=_tick, args=(deps, stop, report), daemon=True)
                ticker.start()
            for thread in threads:
                thread.join(600)
            stop.set()
            if with_timer:
                ticker.join(60)

        drain(with_timer=config.timer_during_burst)
        for _ in range(config.max_rounds):  # the timer: finish stragglers, follow the reruns, revert
            finish_unfinished(deps, job_of=read_job)
            poll(deps)
            drain()
            if not deps.store.pending_outcomes() and not deps.store.unfinished():
                break
        sim.clear_faults()
        _measure(report, sim, deps, failures, updates, transport)
        report.seconds = time.monotonic() - started
    finally:
        sim.stop()
    return report


def _tick(deps: Any, stop: threading.Event, report: SoakReport) -> None:
    from shared.poller import poll

    while not stop.wait(0.25):
        try:
            poll(deps)
            report.timer_ticks += 1
        except Exception:  # noqa: BLE001 - a tick that fails is retried by the next one, as in Azure
            report.timer_errors += 1


def _measure(report: SoakReport, sim: DatabricksSimulator, deps: Any, failures: dict[int, tuple[int, str]],
             updates: list[tuple[int, dict[str, Any]]], transport: _CountingTransport) -> None:
    from shared.decision import utcnow

    stats = sim.faults.stats()
    for name, n in stats["injected"].items():
        report.injected[name.rsplit(" ", 1)[-1]] += n
    report.requests = sum(stats["received"].values())
    report.repairs_applied = sim.applied_count("jobs/runs/repair")
    report.updates_applied = len(updates)
    records = deps.store.recent(utcnow() - timedelta(days=1))
    by_run: dict[int, list[Any]] = {}
    for record in records:
        by_run.setdefault(record.run_id, []).append(record)
        report.statuses[record.status] += 1
        report.decisions[record.action.value if record.action else "none"] += 1
        if record.status != "done":
            report.left_unfinished.append(record.key)
        if record.resize and record.resize.reverted:
            report.reverted += 1
    update_counts: Counter = Counter()
    for job_id, new_settings in updates:
        node = new_settings["job_clusters"][0]["new_cluster"].get("node_type_id")
        update_counts[(job_id, node == CLUSTER["node_type_id"])] += 1
    for run_id, (job_id, kind) in failures.items():
        if len(by_run.get(run_id, [])) != 1:
            report.not_decided_once.append(run_id)
        repairs = sum(1 for item in sim.run(run_id).get("repair_history", []) if item.get("type") == "REPAIR")
        if repairs > 1:
            report.double_repairs.append(run_id)
        record = by_run.get(run_id, [None])[0]
        action = record.action.value if record is not None and record.action else None
        if action != EXPECTED[kind] or repairs != (1 if action and action.startswith("RETRY") else 0) \
                or (record is not None and record.error):
            report.wrong_action.append(run_id)
        if update_counts[(job_id, False)] > 1 or update_counts[(job_id, True)] > 1:
            report.double_updates.append(job_id)
        if sim.job(job_id)["settings"]["job_clusters"][0]["new_cluster"] != CLUSTER:
            report.cluster_not_restored.append(job_id)
    report.emails = sum(transport.sent.values())
    report.double_emails = [nid for nid, n in transport.sent.items() if n > 1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.fault_soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--failures", type=int, default=1000)
    parser.add_argument("--fault-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--no-retryable-400s", action="store_true",
                        help="leave out COULD_NOT_ACQUIRE_LOCK, 'Unexpected error', 'try a faster operation'")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.CRITICAL)
    report = run_soak(SoakConfig(failures=args.failures, fault_fraction=args.fault_fraction, seed=args.seed,
                                 workers=args.workers, kinds=LOSSY + (() if args.no_retryable_400s else RETRYABLE_400S)))
    print(report.text())
    problems = report.problems()
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
