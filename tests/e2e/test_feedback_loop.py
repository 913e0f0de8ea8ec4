"""The learning loop through the Functions: a decision corrected through the email's signed link decides the next
failure with the same fingerprint, with that correction as its evidence; unsigned or expired links do not work."""

from __future__ import annotations

import re
import time
from html import unescape
from urllib.parse import parse_qs, quote, urljoin, urlsplit

import pytest
import requests

from localdev.databricks_sim.model import TaskFailure
from shared.learning.signing import signature
from shared.taxonomy import Action, Category
from tests.e2e.test_failure_path import job_on_cluster

KEY = "e2e-feedback-signing-key-0123456789abcdef"
REFUSED = ("java.net.ConnectException: Connection refused (Connection refused)\n"
           "\tat java.base/sun.nio.ch.Net.connect0(Native Method)")


@pytest.fixture
def learning_agent(agent, monkeypatch):
    """The agent with feedback links to its own endpoint, signed with KEY (as Key Vault would hand it over)."""
    from shared import runtime

    monkeypatch.setenv("FEEDBACK_URL", f"{agent.host.base_url}/api/feedback/{{key}}")
    monkeypatch.setenv("FEEDBACK_SIGNING_KEY", KEY)
    # A lone network failure's email would wait a minute for an incident to fold it into; this is about its links.
    monkeypatch.setenv("INCIDENT_FIRST_EMAIL_WAIT_SECONDS", "0")
    runtime.reset()
    return agent


def feedback_links(email_dir, decision_key) -> dict[str, str]:
    """The Yes / No / tell-us-more links of the email about `decision_key`."""
    for path in sorted(email_dir.glob("*.html")):
        urls = [unescape(u) for u in re.findall(r'href="([^"]*/api/feedback/[^"]*)"', path.read_text())]
        if urls and quote(decision_key, safe="") in urls[0]:
            by_verdict = {parse_qs(urlsplit(u).query).get("verdict", ["page"])[0]: u for u in urls}
            return by_verdict
    raise AssertionError(f"no email with feedback links about {decision_key}")


def by_key(agent, key):
    return next(r for r in agent.decisions() if r.key == key)


def test_a_correction_through_the_signed_link_decides_the_next_failure_with_that_fingerprint(learning_agent, sim):
    agent = learning_agent
    job = job_on_cluster(sim)
    agent.deliver(job, sim.fail_run(job, {"main": TaskFailure(error=REFUSED)}))
    agent.settle()
    [first] = agent.decisions()
    assert first.category is Category.NETWORK and first.action is Action.RETRY

    # A person opens "No" in the email: a form, nothing recorded yet; then sends the right answer.
    link = feedback_links(agent.email_dir, first.key)["wrong"]
    page = requests.get(link, timeout=10)
    assert page.status_code == 200 and 'value="false" checked' in page.text
    action = unescape(re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))
    sent = requests.post(urljoin(link, action), timeout=10, data={
        "correct": "false", "category": "code", "by": "ann@contoso.example",
        "comment": "that service was retired; rerunning cannot help"})
    assert sent.status_code == 200 and "learned rule" in sent.text

    # The same failure again, in the next run of the job.
    agent.deliver(job, sim.fail_run(job, {"main": TaskFailure(error=REFUSED)}))
    agent.settle()
    [second] = [r for r in agent.decisions() if r.key != first.key and r.repair_count == 0]
    assert second.fingerprint == first.fingerprint
    assert (second.category, second.action) == (Category.CODE, Action.SEND_EMAIL)
    assert second.rule_id == f"learned-{first.fingerprint}"
    assert second.evidence[0].startswith(f"corrected by feedback on decision {first.key} (ann@contoso.example")
    assert len(sim.requests_to("/runs/repair", "POST")) == 1, "only the first, uncorrected failure was rerun"


def test_an_unsigned_link_gets_401_and_an_expired_or_altered_one_403(learning_agent, sim):
    agent = learning_agent
    job = job_on_cluster(sim)
    agent.deliver(job, sim.fail_run(job, {"main": TaskFailure(error=REFUSED)}))
    agent.settle()
    [record] = agent.decisions()
    base = f"{agent.host.base_url}/api/feedback/{quote(record.key, safe='')}"
    past = int(time.time()) - 60

    assert requests.get(base, timeout=10).status_code == 401
    assert requests.post(base, data={"correct": "false", "category": "code"}, timeout=10).status_code == 401
    expired = f"{base}?exp={past}&sig={signature(KEY.encode(), record.key, past)}"
    assert requests.get(expired, timeout=10).status_code == 403
    page = feedback_links(agent.email_dir, record.key)["page"]
    altered = re.sub(r"exp=(\d+)", lambda m: f"exp={int(m.group(1)) + 86400}", page)
    assert requests.post(altered, data={"correct": "false", "category": "code"}, timeout=10).status_code == 403


def test_the_api_takes_feedback_with_the_function_key_only(learning_agent, sim):
    agent = learning_agent
    job = job_on_cluster(sim)
    agent.deliver(job, sim.fail_run(job, {"main": TaskFailure(error=REFUSED)}))
    agent.settle()
    [record] = agent.decisions()
    url = f"{agent.host.base_url}/api/decisions/{quote(record.key, safe='')}/feedback"
    body = {"correct": True, "by": "ann@contoso.example"}

    assert requests.post(url, json=body, timeout=10).status_code == 401
    answer = requests.post(url, json=body, headers={"x-functions-key": agent.host.host_key}, timeout=10)
    assert answer.status_code == 201 and answer.json()["message"].startswith("recorded")
    bad = requests.post(url, json={"correct": "perhaps", "by": "ann"}, headers={"x-functions-key": agent.host.host_key},
                        timeout=10)
    assert bad.status_code == 400 and bad.json()["field"] == "correct"


def test_outcomes_are_read_off_the_reruns_confirmed_refuted_and_the_size_that_worked(agent, sim):
    from tests.e2e.test_failure_path import READ_TIMEOUT, out_of_memory_that_a_larger_cluster_fixes

    resized_job, resized_run = out_of_memory_that_a_larger_cluster_fixes(sim)
    stubborn_job = job_on_cluster(sim, name="stubborn")
    stubborn_run = sim.fail_run(stubborn_job, {"main": TaskFailure(error=READ_TIMEOUT)})
    sim.script_repair(stubborn_run, TaskFailure(error=READ_TIMEOUT))  # its repair times out the same way
    agent.deliver(resized_job, resized_run)
    agent.deliver(stubborn_job, stubborn_run)
    agent.settle()

    sim.finish_runs()
    sim.flush_webhooks()
    agent.settle()
    agent.poll()  # follows both reruns up; the failed repair is decided (its own webhook or the poller's find)
    agent.poll()  # ... and the next tick compares the two fingerprints, if the first could not yet

    records = {r.key: r for r in agent.decisions()}
    resized = next(r for r in records.values() if r.run_id == resized_run)
    assert resized.outcome_verdict == "confirmed" and resized.outcome_seen_at is not None
    assert resized.worked_size == "Standard_DS4_v2 × 2 workers"
    stubborn = next(r for r in records.values() if r.run_id == stubborn_run and r.repair_count == 0)
    assert stubborn.outcome_verdict == "refuted"
    assert records[stubborn.rerun_failure_key].fingerprint == stubborn.fingerprint
