"""Incidents on a real incidents table (Azurite) and a real SMTP server: members racing to open one cause end
with one incident and one email; three member failures through the pipeline send one email, each folded."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from azure.data.tables import TableServiceClient

from shared.classify import classify
from shared.decision import DecisionRecord
from shared.events import FailureEvent
from shared.incidents.join import join
from shared.incidents.store import TableIncidentStore
from shared.notify.notifier import Notifier
from shared.notify.outbox import TableOutbox
from shared.notify.transports.smtp import SmtpTransport
from shared.pipeline import PipelineDeps, process
from shared.settings import Settings
from shared.state import MemoryStateStore
from shared.store import MemoryDecisionStore, TableDecisionStore
from shared.taxonomy import Action, Category
from tests.doubles import FixedClock
from tests.unit.test_incidents import T0, Api, failed_run

KEY = "ws|reason|CLOUD_PROVIDER_RESOURCE_STOCKOUT"


@pytest.fixture
def service(storage_connection_string):
    return TableServiceClient.from_connection_string(storage_connection_string)


def table(service, name):
    service.create_table_if_not_exists(name)
    return service.get_table_client(name)


def deps_on_azurite(service, unique_name, smtp_server, clock, store=None):
    settings = Settings(email_enabled=True, email_sender="agent@example.com", notify_channel_routes="",
                        email_default_recipients=["oncall@example.com"], incident_min_jobs=2)
    transport = SmtpTransport(smtp_server.host, smtp_server.port, security="none")
    notifier = Notifier(settings, TableOutbox(table(service, f"{unique_name}o")), transport, clock=clock)
    queued: list = []
    return PipelineDeps(
        settings=settings, jobs_api=lambda ws: None, workspace_key=lambda ws: "ws",
        store=store or MemoryDecisionStore(), state=MemoryStateStore(), notifier=notifier, classify=classify,
        enqueue=lambda e, d: queued.append((e, d)), clock=clock,
        incidents=TableIncidentStore(table(service, f"{unique_name}i")),
    )


def member(job_id: int) -> DecisionRecord:
    return DecisionRecord(key=f"ws:{job_id}00:0", workspace_id="ws", job_id=job_id, job_name=f"job_{job_id}",
                          run_id=job_id * 100, chain_id=f"ws:{job_id}00", category=Category.INFRASTRUCTURE,
                          action=Action.RETRY, fingerprint="f", incident_key=KEY, status="decided")


def test_members_racing_to_open_one_cause_end_with_one_incident_and_one_email(service, unique_name, smtp_server):
    clock = FixedClock(T0)
    deps = deps_on_azurite(service, unique_name, smtp_server, clock)
    jobs = list(range(1, 13))
    start = threading.Barrier(len(jobs))
    answers: dict[int, dict] = {}
    errors: list[BaseException] = []

    def one(job_id: int) -> None:
        try:
            start.wait()
            answers[job_id] = join(member(job_id), None, deps, now=T0)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert errors == []
    incidents = list(table(service, f"{unique_name}i").query_entities("PartitionKey eq 'incident'"))
    assert len(incidents) == 1, "one incident however many members raced"
    incident = deps.incidents.get(incidents[0]["RowKey"])
    assert incident.job_count == len(jobs) and sorted(incident.job_ids) == sorted(str(j) for j in jobs)
    assert len(deps.incidents.members(incident.id)) == len(jobs)
    alone = [j for j, a in answers.items() if "incident_id" not in a]
    assert len(alone) == 1, "exactly one member was first (alone when it was decided)"
    assert {a["incident_id"] for a in answers.values() if "incident_id" in a} == {incident.id}
    assert len(smtp_server.received) == 1 and smtp_server.received[0].rcpt_tos == ["oncall@example.com"]


def test_three_member_failures_through_the_pipeline_send_one_email_and_each_record_says_folded(
        service, unique_name, smtp_server):
    clock = FixedClock(T0)
    store = TableDecisionStore(table(service, f"{unique_name}d"))
    deps = deps_on_azurite(service, unique_name, smtp_server, clock, store=store)
    api = Api()
    deps.jobs_api = lambda ws: api
    for run_id, job_id in ((1, 101), (2, 102), (3, 103)):
        api.runs[run_id] = failed_run(run_id, job_id)
        process(FailureEvent(run_id=run_id, job_id=job_id), deps, owner=f"o{run_id}")
        clock.now += timedelta(seconds=3)
    clock.now += timedelta(minutes=10)
    deps.notifier.flush(clock.now)  # the timer: nothing waiting may go out on its own now

    assert len(smtp_server.received) == 1
    [email] = smtp_server.received
    assert email.message["Subject"].startswith("Incident: 2 jobs failed with one cause")
    assert "job_101" in email.part("plain") and "job_102" in email.part("plain")
    records = [store.get(f"ws:{r}:0") for r in (1, 2, 3)]
    assert len({r.incident_id for r in records}) == 1 and records[0].incident_id
    assert all(r.folded_into == records[0].incident_id for r in records)
    assert all("folded into" in r.done for r in records)
