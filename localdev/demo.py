"""`make demo`: the agent, unchanged, against a simulated Databricks workspace on Azurite.

Starts Azurite and the workspace simulator, loads ten failing jobs, runs the Functions app through the
local runner, delivers each failure the way Databricks does (a generic-webhook POST with Basic auth),
delivers one twice and runs the poller over the same window, lets the reruns finish, runs the poller again
to follow them up, then prints what the agent decided and did. Cleans up after itself and exits 0 when every
failure got exactly one decision.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / ".demo"
WEBHOOK_USER, WEBHOOK_PASSWORD = "databricks", "demo-webhook-password"
SIM_TOKEN = "dapi-demo-0000000000000000000000000000"
WORKSPACE_ID = "1234567890123456"
# host.json as deployed, but with a short retry delay so the demo does not wait 30 s on a throttled call.
FAST_QUEUES = {"visibilityTimeout": "00:00:01", "maxPollingInterval": "00:00:00.200"}


def main() -> int:
    from localdev.azurite import start_azurite
    from localdev.databricks_sim import DatabricksSimulator
    from localdev.databricks_sim.scenarios import load_demo_workspace
    from localdev.host import LocalFunctionsHost, load_app, read_host_json

    shutil.rmtree(OUT, ignore_errors=True)
    (OUT / "emails").mkdir(parents=True)
    started = time.monotonic()
    say("Starting Azurite and the simulated Databricks workspace ...")
    azurite = start_azurite()
    sim = DatabricksSimulator(token=SIM_TOKEN, workspace_id=WORKSPACE_ID)
    host = None
    try:
        sim.start()
        scenarios = load_demo_workspace(sim, shapes=True)  # with the for_each and run_job jobs
        env = demo_environment(azurite.connection_string, sim.url)
        os.environ.update(env)
        from shared import runtime

        runtime.reset()
        host_json = read_host_json(ROOT)
        host_json.setdefault("extensions", {}).setdefault("queues", {}).update(FAST_QUEUES)
        host = LocalFunctionsHost(load_app(ROOT), azurite.connection_string, host_json=host_json, env=env)
        host.start()
        url = f"{host.base_url}/api/databricks/webhook?code={host.host_key}"
        sim.send_webhooks_to(url, username=WEBHOOK_USER, password=WEBHOOK_PASSWORD)
        os.environ["FEEDBACK_URL"] = f"{host.base_url}/api/feedback/{{key}}"  # the emails' links reach this host
        say(f"Functions listening on {host.base_url}; {len(scenarios)} jobs have just failed.\n")

        say("1. Databricks delivers one jobs.on_failure webhook per failed run ...")
        answers = [deliver(url, job_id, run_id, name) for name, (job_id, run_id) in scenarios.items()]
        say(f"   answers: {dict(Counter(answers))}")
        say("2. ... delivers the out-of-memory failure a second time, and the poller scans the same window.")
        job_id, run_id = scenarios["oom_job_cluster"]
        deliver(url, job_id, run_id, "oom_job_cluster")
        host.wait_idle(timeout=60)
        host.run_timer("poll_failures")
        host.wait_idle(timeout=60)

        say("3. The reruns the agent started finish; the poller follows them up (and reverts the resize).")
        sim.finish_runs()
        sim.flush_webhooks()
        host.wait_idle(timeout=60)
        host.run_timer("poll_failures")
        host.wait_idle(timeout=60)
        sim.flush_webhooks()
        host.wait_idle(timeout=60)

        say("3b. Three more jobs fail within seconds of each other with one shared cause: the cloud has no capacity.")
        shared_cause = load_incident_jobs(sim)
        for name, (job_id, run_id) in shared_cause.items():
            deliver(url, job_id, run_id, name)
        runs = {run_id for _, run_id in shared_cause.values()}
        wait_for(lambda: runs <= {r.run_id for r in decisions() if r.status in ("held", "done")}, 60)
        show_incident(shared_cause)
        say("   The cloud has capacity again: the canary rerun succeeds, the held reruns go out, the incident resolves.")
        wait_for(lambda: (sim.finish_runs() or True) and not [r for r in decisions() if r.run_id in runs
                                                            and r.status == "held"], 60)
        host.wait_idle(timeout=60)
        sim.finish_runs()
        told = [p.read_text(encoding="utf-8").splitlines()[0].removeprefix("Subject: ")
                for p in sorted((OUT / "emails").glob("*.txt")) if p.read_text(encoding="utf-8").startswith("Subject: Incident")]
        states = Counter(r.status for r in decisions() if r.run_id in runs)
        say(f"   Incident emails in all: {told}; the three decisions: {dict(states)} (the held reruns went out).\n")
        scenarios.update(shared_cause)

        correct_one_decision(host, sim, scenarios, url)

        records = decisions()
        print_report(records, scenarios, sim)
        ok = check(records, scenarios)
        write_report_page()
        say(f"\nDone in {time.monotonic() - started:.1f} s. Emails: {OUT / 'emails'}")
        return 0 if ok else 1
    finally:
        if host is not None:
            host.stop()
        sim.stop()
        azurite.stop()


def demo_environment(storage: str, workspace_url: str) -> dict[str, str]:
    """The app settings of the demo: what local.settings.json would hold."""
    return {
        "AzureWebJobsStorage": storage,
        "DATABRICKS_WORKSPACE_URL": workspace_url,
        "DATABRICKS_PAT_TOKEN": SIM_TOKEN,
        "DATABRICKS_WORKSPACE_ID": WORKSPACE_ID,
        "AGENT_MODE": "act",
        "MAX_RETRIES": "3",
        "CLAIM_WAIT_SECONDS": "1",  # the twice-delivered failure: the second look comes a second later
        "POLL_SCHEDULE": "0 */5 * * * *",
        "POLL_SETTLE_MINUTES": "0",  # the simulated runs end "now"; the poller is run on purpose right after
        "WEBHOOK_USERNAME": WEBHOOK_USER,
        "WEBHOOK_PASSWORD": WEBHOOK_PASSWORD,
        "EMAIL_ENABLED": "true",
        "EMAIL_TRANSPORT": "file",
        "EMAIL_FILE_DIR": str(OUT / "emails"),
        "EMAIL_SENDER": "databricks-agent@contoso.example",
        "EMAIL_DEFAULT_RECIPIENTS": "data-oncall@contoso.example",
        "EMAIL_ESCALATION_RECIPIENTS": "platform-oncall@contoso.example",
        "FEEDBACK_SIGNING_KEY": "demo-feedback-signing-key-not-a-secret-0123456789",
        "LOG_LEVEL": "WARNING",
        # Step 4's outage plays out in seconds (defaults: a minute's backoff, two minutes' spread).
        "INCIDENT_CANARY_BACKOFF_SECONDS": "2",
        "INCIDENT_CANARY_MAX_BACKOFF_SECONDS": "8",
        "INCIDENT_RELEASE_SPREAD_SECONDS": "3",
    }


def correct_one_decision(host, sim, scenarios, url: str) -> None:
    """4. A person corrects one decision through the email's signed link; the next failure with the same
    fingerprint is decided by the rule learned from it."""
    import re
    from html import unescape
    from urllib.parse import quote, urljoin

    from localdev.databricks_sim.model import TaskFailure
    from localdev.databricks_sim.scenarios import READ_TIMEOUT_ERROR, READ_TIMEOUT_TRACE

    job_id, run_id = scenarios["read_timeout"]
    first = next(r for r in decisions() if r.run_id == run_id and r.repair_count == 0)
    say(f"4. The CRM team answers 'No' in the email about {first.job_name} ({first.category.value}, "
        f"{first.action.value}): the endpoint is misconfigured, a rerun cannot help; email us instead.")
    wrong = _feedback_link(quote(first.key, safe=""), "wrong")
    form = requests.get(wrong, timeout=10)
    action = unescape(re.search(r'<form method="post" action="([^"]+)"', form.text).group(1))
    answer = requests.post(urljoin(wrong, action), timeout=10, data={
        "correct": "false", "category": "code", "by": "crm-integration@contoso.example",
        "comment": "the CRM endpoint moved; fix the connection settings"})
    said = re.search(r"<p>(.*?)</p>", answer.text, re.S)
    say(f"   signed link {answer.status_code}: {unescape(said.group(1)) if said else answer.text[:120]}")
    say("   The same read timeout fails the job's next run; the learned rule decides it:")
    again = sim.fail_run(job_id, {"extract_accounts": TaskFailure(error=READ_TIMEOUT_ERROR, error_trace=READ_TIMEOUT_TRACE)})
    deliver(url, job_id, again, "read_timeout")
    host.wait_idle(timeout=60)
    second = next((r for r in decisions() if r.run_id == again), None)
    if second is not None:
        say(f"   run {again}: {second.category.value}, {second.action.value} (rule {second.rule_id})")
        say(f"   evidence: {second.evidence[0][:150] if second.evidence else '-'}\n")


def _feedback_link(quoted_key: str, verdict: str) -> str:
    """The feedback link of `verdict` in the email about the decision `quoted_key` (as a reader clicks it)."""
    import re
    from html import unescape

    for path in sorted((OUT / "emails").glob("*.html")):
        for href in re.findall(r'href="([^"]*/api/feedback/[^"]*)"', path.read_text(encoding="utf-8")):
            link = unescape(href)
            if quoted_key in link and f"verdict={verdict}" in link:
                return link
    raise RuntimeError(f"no feedback link in the emails for {quoted_key}")


def write_report_page() -> None:
    """5. The accuracy report over what the demo decided (python -m shared report), and fine-tuning's verdict."""
    from shared import runtime
    from shared.commands.report import summary
    from shared.decision import utcnow
    from shared.finetune.dataset import NotEnoughExamples, prepare
    from shared.finetune.labels import verified
    from shared.report.sources import feedback_reader, report_from_storage
    from shared.store import TableDecisionStore
    from shared.wiring import table

    settings, now = runtime.settings(), utcnow()
    report = report_from_storage(settings, since=now - timedelta(days=1), until=now + timedelta(minutes=1))
    page = OUT / "report.html"
    page.write_text(report.to_html(), encoding="utf-8")
    say("\n5. The report (python -m shared report): " + summary(report).replace("\n", "\n   "))
    say(f"   The report page: {page}")
    records = TableDecisionStore(table(settings, settings.decisions_table)).recent(now - timedelta(days=1))
    try:
        prepare(verified(records, feedback_reader(settings)(now - timedelta(days=1))), OUT / "finetune")
    except NotEnoughExamples as exc:
        say(f"   python -m shared finetune prepare refuses, as it should on a demo: {exc}")


STOCKOUT = ("Cluster 0106-090000-abcd1234 could not be launched: CLOUD_PROVIDER_RESOURCE_STOCKOUT: the region has "
            "no capacity for Standard_DS3_v2 right now")


def load_incident_jobs(sim) -> dict[str, tuple[int, int]]:
    """Three jobs whose runs fail alike because their clusters could not launch (a cloud stockout)."""
    from localdev.databricks_sim.model import TaskFailure

    out = {}
    for name in ("sales_hourly_load", "inventory_snapshot", "marketing_attribution"):
        job = sim.add_job(name, [{"task_key": "main", "notebook_task": {"notebook_path": f"/Repos/etl/{name}"}}])
        out[name] = (job, sim.fail_run(job, {"main": TaskFailure(
            error=None, termination_code="CLOUD_FAILURE", life_cycle_state="INTERNAL_ERROR", state_message=STOCKOUT)}))
        sim.script_repair(out[name][1], "success")
    return out


def wait_for(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the incident step did not settle")
        time.sleep(0.3)


def show_incident(jobs: dict[str, tuple[int, int]]) -> None:
    """The one notification the incident sent, as its recipients read it, and what each member's record says."""
    incident_mails = [p for p in sorted((OUT / "emails").glob("*.txt"))
                      if p.read_text(encoding="utf-8").startswith("Subject: Incident")]
    about_them = [p for p in sorted((OUT / "emails").glob("*.txt"))
                  if p not in incident_mails and any(n in p.read_text(encoding="utf-8") for n in jobs)]
    say(f"   {len(incident_mails)} incident notification, {len(about_them)} emails of their own. It opened when the "
        "second job shared the cause (INCIDENT_MIN_JOBS 2); the third joined it, held, and is listed when it resolves. "
        "It reads:\n")
    for path in incident_mails:
        say("   | " + "\n   | ".join(path.read_text(encoding="utf-8").rstrip().splitlines()))
    runs = {run_id for _, run_id in jobs.values()}
    say("")
    for r in (r for r in decisions() if r.run_id in runs):
        say(wrapped(f"{r.action.value if r.action else '-'}, {r.status}: {r.done}", first=f"   {r.job_name:<24} "))
    say("")


def deliver(url: str, job_id: int, run_id: int, name: str) -> int:
    """POST the documented job-level payload, as a Databricks generic webhook destination does."""
    payload = {"event_type": "jobs.on_failure", "workspace_id": WORKSPACE_ID,
               "run": {"run_id": str(run_id)}, "job": {"job_id": str(job_id), "name": name}}
    answer = requests.post(url, json=payload, auth=(WEBHOOK_USER, WEBHOOK_PASSWORD), timeout=10)
    return answer.status_code


def decisions():
    from shared import runtime
    from shared.store import TableDecisionStore
    from shared.wiring import table

    settings = runtime.settings()
    store = TableDecisionStore(table(settings, settings.decisions_table))
    return sorted(store.recent(since=_epoch()), key=lambda r: (r.job_id or 0, r.attempt))


def print_report(records, scenarios, sim) -> None:
    from shared.commands.decisions import format_table

    say("\nWhat the agent decided (one row per decision, from Table Storage):\n")
    say(format_table(records))
    say("\nWhy (\"rerun k of R\": the rerun this decision starts, of at most R = MAX_RETRIES for the chain):")
    for r in records:
        say(wrapped(r.reason, first=f"  {r.job_name:<28} "))
        if r.evidence:
            say(wrapped(r.evidence[0], first=f"  {'':<28} evidence: ", max_lines=2))
    repairs = sim.requests_to("/runs/repair", "POST")
    updates = sim.requests_to("/jobs/update", "POST")
    say(f"\nIn Databricks: {len(repairs)} repairs, {len(updates)} job-cluster updates (resize and its revert).")
    emails = sorted((OUT / "emails").glob("*.html"))
    say(f"Emails written: {len(emails)}" + "".join(f"\n  {p.name}" for p in emails[:20]))
    say(wrapped(f"Their job and run links point at the simulated workspace ({sim.url}), which stops with the demo: "
                "in a real deployment they open the run in Databricks.", first="  "))


def wrapped(text: str, *, first: str, width: int = 118, max_lines: int | None = None) -> str:
    """`text` after `first`, wrapped at word boundaries, the next lines indented to line up with it."""
    import textwrap

    return textwrap.fill(" ".join(text.split()), width=width, initial_indent=first,
                         subsequent_indent=" " * len(first), max_lines=max_lines, placeholder=" …")


def check(records, scenarios) -> bool:
    """Every failed run got exactly one first decision, and the duplicate delivery added none."""
    first = Counter((r.run_id) for r in records if r.repair_count == 0)
    runs = {run_id for _, run_id in scenarios.values()}
    missing = runs - set(first)
    doubled = [run for run, n in first.items() if n > 1]
    if missing or doubled:
        say(f"\nPROBLEM: runs without a decision {sorted(missing)}, runs decided twice {doubled}")
        return False
    say(f"\nEvery one of the {len(runs)} failed runs got exactly one decision; the duplicate webhook and the "
        "poller's second look added none.")
    return True


def _epoch():
    from datetime import datetime, timezone

    return datetime(2000, 1, 1, tzinfo=timezone.utc)


def say(text: str) -> None:
    print(text, flush=True)


if __name__ == "__main__":
    sys.exit(main())
