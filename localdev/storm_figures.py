"""The storm's figures and checks (localdev/storm.py), read from the outside only: the SMTP sink and the chat fakes,
the simulator's runs and request log, and the agent's decisions (and incidents, once there are any) tables.

Targets (issue 13): ≤ 3 notifications per recipient list for the whole incident; repairs and run-nows started
during the outage ≤ 1 per minute per incident (the canary); every job rerun after the outage and succeeded;
peak Jobs API requests per second of each endpoint ≤ its configured budget (Databricks limits each endpoint); one decision per failed run or rerun, and no run
repaired more often than a decision asked.
"""

from __future__ import annotations

import math
from collections import Counter
from email import message_from_bytes, policy
from typing import Any

NOTIFICATIONS_PER_LIST = 3


def _peaks_against_budgets(config: Any, peaks: dict[str, int]) -> dict[str, dict[str, float]]:
    """Each Jobs API endpoint's busiest second at the simulator, beside the budget of its limiter class."""
    from shared.databricks.limiter import class_of

    budgets = {"jobs": config.requests_per_second, "runs": config.runs_requests_per_second,
               "job_writes": config.job_writes_per_second}
    out = {}
    for key, peak in peaks.items():
        endpoint = key.split(" ", 1)[-1]
        if endpoint.startswith("sim/") or "/sim/" in key:
            continue
        out[key] = {"peak": peak, "budget": budgets[class_of(endpoint)]}
    return out


def measure(config: Any, sim: Any, runs: dict[int, int], outage: dict[str, Any], first_request: int, sink: Any,
            chat: Any, seconds: float) -> dict[str, Any]:
    """Every figure of one storm, with its checks."""
    start_ms, end_ms = outage["started_ms"], outage["ends_ms"]
    history = _history(sim, set(runs.values()))
    records = _decisions()
    incidents = _incidents()
    emails = _emails(sink)
    per_list = Counter(", ".join(sorted(rcpt)) for rcpt, _ in emails)
    per_address = Counter(a for rcpt, _ in emails for a in set(rcpt))
    slack = chat.received.get("slack", [])
    pagerduty = chat.received.get("pagerduty", [])
    reruns = [(at, kind) for at, kind, _ in history["starts"] if kind != "ORIGINAL"]
    during = [at for at, _ in reruns if start_ms <= at < end_ms]
    bucket_ms = config.minute_s * 1000
    buckets = [0] * max(1, math.ceil((end_ms - start_ms) / bucket_ms))
    for at in during:
        buckets[int((at - start_ms) // bucket_ms)] += 1
    n_incidents = max(1, len({i for i in incidents if i}))
    decided, problems = _exactly_once(history["failures"], history["repairs"], records)
    recovered = [job for job, state in history["final"].items() if state == ("SUCCESS", True)]
    peak = sim.faults.peak_rate()
    by_endpoint = _peaks_against_budgets(config, sim.faults.peak_rates())
    worst = max(by_endpoint.items(), key=lambda kv: kv[1]["peak"] / kv[1]["budget"], default=("none", {"peak": 0,
                                                                                                  "budget": 1}))
    requests = sim.requests[first_request:]
    figures: dict[str, Any] = {
        "jobs": len(runs), "seconds": round(seconds, 1), "outage_s": config.outage_s, "spread_s": config.spread_s,
        "minute_s": config.minute_s,
        "failures": len(history["failures"]), "decisions": len(records),
        "actions": dict(Counter(str(r.action.value if r.action else None) for r in records)),
        "incidents": len({i for i in incidents if i}),
        "emails": len(emails), "emails_per_list": dict(per_list.most_common()),
        "emails_per_address": dict(per_address.most_common()),
        "email_subjects": dict(Counter(subject for _, subject in emails).most_common(8)),
        "emails_held_for_digest": _held_for_digest(),
        "slack_messages": len(slack),
        "pagerduty_events": dict(Counter(e.get("event_action") for e in pagerduty)),
        "pagerduty_dedup_keys": len({e.get("dedup_key") for e in pagerduty}),
        "reruns": len(reruns), "reruns_during_outage": len(during), "reruns_during_outage_per_minute": buckets,
        "reruns_after_outage": len(reruns) - len(during),
        "jobs_rerun_and_succeeded_after_outage": len(recovered),
        "jobs_api_requests": len(requests),
        "jobs_api_requests_by_endpoint": dict(Counter(f"{r.method} {r.path.split('/api/')[-1][4:]}"
                                                      for r in requests).most_common()),
        "peak_requests_per_s": peak, "requests_per_second_limit": config.requests_per_second,
        "peak_by_endpoint": by_endpoint,
        "failures_decided_once": decided, "exactly_once_problems": problems[:10],
    }
    most_per_list = max([*per_list.values(), len(slack), sum(figures["pagerduty_events"].values()), 0])
    figures["checks"] = [
        _check("notifications per recipient list (email, Slack, PagerDuty)", most_per_list,
               f"≤ {NOTIFICATIONS_PER_LIST}", most_per_list <= NOTIFICATIONS_PER_LIST),
        _check(f"reruns started during the outage per minute ({config.minute_s:g} s) per incident",
               max(buckets), f"≤ 1 × {n_incidents} incident(s)", max(buckets) <= n_incidents),
        _check("jobs rerun after the outage and succeeded", f"{len(recovered)} / {len(runs)}", "all",
               len(recovered) == len(runs)),
        _check("peak Jobs API requests per second, per endpoint", f"{worst[0]} {worst[1]['peak']}",
               f"≤ its budget ({worst[1]['budget']:g})", all(p["peak"] <= p["budget"] for p in by_endpoint.values())),
        _check("failures decided exactly once, no double repair", f"{decided} / {len(history['failures'])}",
               "all, 0 problems", decided == len(history["failures"]) and not problems),
    ]
    return figures


def _check(name: str, value: Any, target: str, ok: bool) -> dict[str, Any]:
    return {"name": name, "value": value, "target": target, "ok": bool(ok)}


def _history(sim: Any, run_ids: set[int]) -> dict[str, Any]:
    """From the workspace: every execution started for the storm's jobs (ORIGINAL, REPAIR, run-now), every
    failure as (run id, repair count), repairs per run, and each job's final state."""
    with sim.workspace.lock:
        by_id = {rid: sim.workspace.runs[rid] for rid in run_ids}
        jobs = {run.job_id for run in by_id.values()}
        later = [r for r in sim.workspace.runs.values() if r.job_id in jobs and r.run_id not in run_ids]
        starts, failures, repairs, final = [], [], Counter(), {}
        for run in [*by_id.values(), *later]:
            ours = run.run_id not in run_ids  # a run-now of the job (trigger ONE_TIME) is a rerun too
            for index, item in enumerate(run.history):
                kind = "RUN_NOW" if ours and item.type == "ORIGINAL" else item.type
                starts.append((item.start_time, kind, run.run_id))
                repairs[run.run_id] += item.type == "REPAIR"
                if item.result_state not in (None, "SUCCESS", "SUCCESS_WITH_FAILURES"):
                    failures.append((run.run_id, index))
        end = max((o.end_ms for o in [sim.workspace.outage] if o is not None), default=0)
        for job in jobs:
            newest = max((r for r in sim.workspace.runs.values() if r.job_id == job), key=lambda r: r.run_id)
            last = newest.history[-1] if newest.history else None
            final[job] = (newest.result_state, bool(last and last.start_time >= end))
    return {"starts": sorted(starts), "failures": failures, "repairs": repairs, "final": final}


def _exactly_once(failures: list[tuple[int, int]], repairs: Counter, records: list[Any]) -> tuple[int, list[str]]:
    by_failure = Counter((r.run_id, r.repair_count) for r in records)
    problems = [f"run {run} failure {n}: {by_failure[(run, n)]} decisions"
                for run, n in failures if by_failure[(run, n)] != 1]
    known = set(failures)
    problems += [f"decision {r.key} about no failure" for r in records if (r.run_id, r.repair_count) not in known]
    retries = Counter(r.run_id for r in records if r.action is not None and r.action.value.startswith("RETRY"))
    problems += [f"run {run}: {n} repairs for {retries[run]} RETRY decisions" for run, n in repairs.items()
                 if n > retries[run]]
    decided = sum(1 for key in failures if by_failure[key] == 1)
    return decided, problems


def _decisions() -> list[Any]:
    from datetime import datetime, timezone

    from shared import runtime
    from shared.store import TableDecisionStore
    from shared.wiring import table

    settings = runtime.settings()
    return TableDecisionStore(table(settings, settings.decisions_table)).recent(
        since=datetime(2000, 1, 1, tzinfo=timezone.utc))


def _incidents() -> list[str]:
    """The incidents opened: rows of the `incidents` table's "incident" partition (none before issue 13)."""
    return [str(r.get("RowKey")) for r in _rows("incidents") if r.get("PartitionKey") == "incident"]


def _held_for_digest() -> int:
    from shared import runtime

    return sum(1 for r in _rows(runtime.settings().outbox_table) if r.get("status") == "held")


def _rows(name: str) -> list[dict[str, Any]]:
    from azure.core.exceptions import ResourceNotFoundError

    from shared import runtime
    from shared.wiring import table_service

    service = table_service(runtime.settings())
    try:
        return [dict(e) for e in service.get_table_client(name).list_entities()]
    except ResourceNotFoundError:
        return []


def _emails(sink: Any) -> list[tuple[list[str], str]]:
    out = []
    for _, rcpt, raw in sink.received:
        message = message_from_bytes(raw, policy=policy.default)
        out.append((sorted(a.lower() for a in rcpt), str(message.get("Subject", ""))[:90]))
    return out


def format_report(f: dict[str, Any]) -> str:
    """The figures as a small text report: the checks first."""
    lines = [f"Storm: {f['jobs']} jobs, runs failing within {f['spread_s']:g} s, cloud outage {f['outage_s']:g} s; "
             f"{f['seconds']} s in all"]
    for check in f["checks"]:
        lines.append(f"  [{'ok' if check['ok'] else 'MISS'}] {check['name']}: {check['value']} (target {check['target']})")
    pd = ", ".join(f"{k} {v}" for k, v in f["pagerduty_events"].items()) or "none"
    rows = [
        ("failures / decisions", f"{f['failures']} failed runs and reruns / {f['decisions']} decision records "
                                 f"({', '.join(f'{k} {v}' for k, v in sorted(f['actions'].items()))})"),
        ("incidents", f"{f['incidents']}"),
        ("emails sent", f"{f['emails']} (+{f['emails_held_for_digest']} held for digests)"),
        ("  per recipient list", ", ".join(f"{k}: {v}" for k, v in f["emails_per_list"].items()) or "none"),
        ("  most to one address", max(f["emails_per_address"].values(), default=0)),
        ("  subjects", "; ".join(f"{v}× {k}" for k, v in f["email_subjects"].items()) or "none"),
        ("Slack / PagerDuty", f"{f['slack_messages']} messages / {pd} ({f['pagerduty_dedup_keys']} dedup keys)"),
        ("reruns (repairs, run-nows)", f"{f['reruns']}: {f['reruns_during_outage']} during the outage, "
                                       f"{f['reruns_after_outage']} after"),
        (f"  during, per {f['minute_s']:g} s", f"{f['reruns_during_outage_per_minute']}"),
        ("jobs rerun + succeeded after", f"{f['jobs_rerun_and_succeeded_after_outage']} / {f['jobs']}"),
        ("Jobs API requests", f"{f['jobs_api_requests']}; peak {f['peak_requests_per_s']}/s over all endpoints"),
        ("peak per endpoint", ", ".join(f"{k} {v['peak']}/{v['budget']:g}" for k, v in f["peak_by_endpoint"].items())),
        ("  by endpoint", ", ".join(f"{k} {v}" for k, v in f["jobs_api_requests_by_endpoint"].items())),
        ("exactly once", f"{f['failures_decided_once']} / {f['failures']} decided once; "
                         f"problems: {f['exactly_once_problems'] or 'none'}"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(lines + [f"{name:<{width}}  {value}" for name, value in rows])
