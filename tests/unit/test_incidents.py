"""Incidents: the grouping key, the policy with a fixed clock, and the whole flow on memory stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from shared.databricks.models import Job, Run, RunOutput
from shared.events import FailureEvent
from shared.incidents import drive, policy
from shared.incidents.key import cause_key
from shared.incidents.model import Audience, Incident
from shared.incidents.store import MemoryIncidentStore
from shared.classify import classify
from shared.decision import DecisionRecord
from shared.notify import Notifier
from shared.notify.outbox import MemoryOutbox
from shared.notify.transports.base import EmailTransport, OutgoingEmail, SendResult
from shared.pipeline import PipelineDeps, process
from shared.settings import Settings
from shared.state import MemoryStateStore
from shared.store import MemoryDecisionStore
from shared.taxonomy import Action, Category
from tests.doubles import FixedClock

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
STOCKOUT = "Cluster could not be launched: CLOUD_PROVIDER_RESOURCE_STOCKOUT: no capacity for Standard_DS3_v2"


# --- the grouping key ---------------------------------------------------------------------------------------

def test_a_cluster_termination_reason_names_the_cause_whatever_the_text():
    assert cause_key("ws", Category.INFRASTRUCTURE, "abc", termination_code="CLOUD_FAILURE",
                     cluster_reason="CLOUD_PROVIDER_RESOURCE_STOCKOUT") == "ws|reason|CLOUD_PROVIDER_RESOURCE_STOCKOUT"


def test_a_termination_code_outside_the_job_names_the_cause():
    assert cause_key("ws", Category.INFRASTRUCTURE, "abc", termination_code="CLOUD_FAILURE") == "ws|code|CLOUD_FAILURE"


def test_a_failure_in_the_job_groups_by_category_and_fingerprint():
    key = cause_key("ws", Category.DATA, "f00d", termination_code="RUN_EXECUTION_ERROR", cluster_reason="JOB_FINISHED")
    assert key == "ws|fp|data|f00d"


def test_workspaces_never_share_an_incident():
    assert cause_key("a", Category.DATA, "f") != cause_key("b", Category.DATA, "f")


def test_cancelled_runs_and_empty_fingerprints_form_no_incident():
    assert cause_key("ws", Category.CANCELLED, "abc") is None
    assert cause_key("ws", Category.UNKNOWN, "") is None


# --- the policy, with the time passed in ----------------------------------------------------------------------

def test_canary_backoff_doubles_up_to_the_cap_with_jitter_inside_twenty_percent():
    nominal = [60, 120, 240, 480, 600, 600]
    for n, expected in enumerate(nominal):
        low = policy.canary_delay(n, 60, 600, lambda: 0.0)
        high = policy.canary_delay(n, 60, 600, lambda: 0.999999)
        assert low == pytest.approx(expected * 0.8) and high == pytest.approx(expected * 1.2, rel=1e-5)


def test_release_is_spread_evenly_over_the_window():
    offsets = policy.release_offsets(4, 120)
    assert offsets == [0, 30, 60, 90] and policy.release_offsets(0, 120) == []


def _incident(**values) -> Incident:
    base = dict(id="inc-1", workspace_id="ws", cause_key="ws|code|CLOUD_FAILURE", cause="c",
                category=Category.INFRASTRUCTURE, holds=True, first_seen=T0, last_seen=T0, opened_at=T0)
    return Incident(**{**base, **values})


def test_an_update_goes_out_only_after_the_interval_and_only_if_jobs_joined():
    told = Audience(to=["a@x.com"], told_at=T0, jobs_told=2)
    assert not policy.update_due(told, 5, T0 + timedelta(seconds=899), 900)
    assert policy.update_due(told, 5, T0 + timedelta(seconds=900), 900)
    assert not policy.update_due(told, 2, T0 + timedelta(hours=2), 900)


def test_escalation_is_due_once_past_the_limit():
    incident = _incident()
    assert not policy.escalation_due(incident, T0 + timedelta(seconds=3599), 3600)
    assert policy.escalation_due(incident, T0 + timedelta(seconds=3600), 3600)
    incident.escalated_at = T0 + timedelta(seconds=3600)
    assert not policy.escalation_due(incident, T0 + timedelta(hours=5), 3600)


def test_a_held_incident_keeps_members_joining_past_the_window_until_it_resolves():
    held, plain = _incident(), _incident(holds=False)
    later = T0 + timedelta(hours=2)
    assert policy.joins(held, later, 900) and not policy.joins(plain, later, 900)
    held.state = "resolved"
    assert not policy.joins(held, T0, 900)


# --- the flow on memory stores ---------------------------------------------------------------------------------

class Transport(EmailTransport):
    name = "memory"

    def __init__(self) -> None:
        self.sent: list[OutgoingEmail] = []

    def _send(self, email: OutgoingEmail) -> SendResult:
        self.sent.append(email)
        return SendResult(self.name, provider_id=f"m{len(self.sent)}")


def failed_run(run_id: int, job_id: int, repairs: list[str] | None = None) -> dict:
    """A run whose cluster could not launch (INTERNAL_ERROR + FAILED, as Databricks shows it)."""
    history = [{"type": "ORIGINAL", "id": run_id}] + [
        {"type": "REPAIR", "id": 9000 + run_id * 10 + i, "state": {"life_cycle_state": "TERMINATED", "result_state": r}}
        for i, r in enumerate(repairs or [])]
    last = (repairs or ["FAILED"])[-1]
    life = "TERMINATED" if last == "SUCCESS" else "INTERNAL_ERROR"
    return {"run_id": run_id, "job_id": job_id, "run_name": f"job_{job_id}",
            "state": {"life_cycle_state": life, "result_state": last, "state_message": STOCKOUT},
            "status": {"termination_details": {"code": "CLOUD_FAILURE", "type": "CLOUD_FAILURE", "message": STOCKOUT}},
            "tasks": [{"run_id": run_id * 10, "task_key": "main", "state": {"life_cycle_state": life,
                       "result_state": last, "state_message": STOCKOUT}}],
            "repair_history": history}


@dataclass
class Api:
    runs: dict[int, dict] = field(default_factory=dict)
    repairs: list[int] = field(default_factory=list)
    outage: bool = True

    def get_run(self, run_id):
        return Run.model_validate(self.runs[run_id])

    def get_run_output(self, task_run_id):
        return RunOutput(error=STOCKOUT)

    def get_job(self, job_id):
        return Job.model_validate({"job_id": job_id, "settings": {
            "name": f"job_{job_id}", "email_notifications": {"on_failure": ["data-team@example.com"]}}})

    def repair_run(self, run_id, *, latest_repair_id=None, **_):
        self.repairs.append(run_id)
        run = self.runs[run_id]
        repairs = [h["state"]["result_state"] for h in run["repair_history"] if h["type"] == "REPAIR"]
        self.runs[run_id] = failed_run(run_id, run["job_id"], repairs + ["FAILED" if self.outage else "SUCCESS"])
        return 9000 + run_id * 10 + len(repairs)


@pytest.fixture
def world():
    clock = FixedClock(T0)
    api = Api()
    transport = Transport()
    settings = Settings(email_enabled=True, email_sender="agent@example.com", incident_min_jobs=2,
                        incident_first_email_wait_seconds=60, incident_canary_backoff_seconds=60,
                        incident_canary_max_backoff_seconds=600, incident_release_spread_seconds=120,
                        incident_escalate_after_seconds=3600, notify_channel_routes="")
    notifier = Notifier(settings, MemoryOutbox(), transport, clock=clock)
    queued: list[tuple[FailureEvent, int]] = []
    deps = PipelineDeps(settings=settings, jobs_api=lambda ws: api, workspace_key=lambda ws: "ws",
                        store=MemoryDecisionStore(), state=MemoryStateStore(), notifier=notifier, classify=classify,
                        enqueue=lambda e, d: queued.append((e, d)), clock=clock, incidents=MemoryIncidentStore())
    yield deps, api, transport, clock, queued


def fail(deps, api, run_id, job_id):
    api.runs[run_id] = failed_run(run_id, job_id)
    return process(FailureEvent(run_id=run_id, job_id=job_id), deps, owner=f"o{run_id}")


def test_a_lone_failure_of_its_cause_joins_nothing_and_costs_one_table_operation(world):
    deps, api, transport, clock, _ = world
    counted = CountingTable()
    deps.incidents = MemoryIncidentStore()
    deps.incidents._table = counted

    fail(deps, api, 1, 101)

    assert counted.operations == 1
    record = deps.store.get("ws:1:0")
    assert record.incident_id is None and record.action is Action.RETRY and api.repairs == [1]


class CountingTable:
    def __init__(self):
        from shared.tables import MemoryEntityTable

        self.inner, self.operations = MemoryEntityTable(), 0

    def __getattr__(self, name):
        method = getattr(self.inner, name)

        def counted(*args, **kwargs):
            self.operations += 1
            return method(*args, **kwargs)
        return counted


def test_three_jobs_with_one_cause_are_one_incident_with_one_email_and_every_own_email_folded(world):
    deps, api, transport, clock, queued = world

    for run_id, job_id in ((1, 101), (2, 102), (3, 103)):
        fail(deps, api, run_id, job_id)
        clock.now += timedelta(seconds=5)
    clock.now += timedelta(minutes=5)
    deps.notifier.flush(clock.now)  # the timer: the first failure's waiting email would go out now

    # Opened by the second job (INCIDENT_MIN_JOBS=2); the third joined inside the update interval: no email.
    assert [e.subject for e in transport.sent] == ["Incident: 2 jobs failed with one cause"]
    body = transport.sent[0].text
    assert all(f"job_{j}" in body for j in (101, 102)) and "CLOUD_FAILURE" in body
    assert transport.sent[0].to == ("data-team@example.com",)
    records = [deps.store.get(f"ws:{r}:0") for r in (1, 2, 3)]
    incident_id = records[1].incident_id
    assert incident_id and all(r.incident_id == incident_id for r in records)
    assert all(r.folded_into == incident_id for r in records)
    # The first was alone when decided (its rerun went out); the others wait for the canary.
    assert api.repairs == [1]
    assert [r.status for r in records[1:]] == ["held", "held"]
    assert all(r.action is Action.RETRY and r.intent is not None for r in records[1:])


def test_the_canary_backs_off_then_its_success_releases_the_held_reruns_over_the_spread(world):
    deps, api, transport, clock, queued = world
    for run_id, job_id in ((1, 101), (2, 102), (3, 103), (4, 104)):
        fail(deps, api, run_id, job_id)
    incident_id = deps.store.get("ws:2:0").incident_id
    incident = deps.incidents.get(incident_id)
    # The first job's own rerun (alone then) was the first probe: the canary waits a backoff +20 % after it.
    assert incident.next_canary_at == T0 + timedelta(seconds=72)

    ticks = [e for e, _ in queued if e.incident_id and not e.incident_release]
    assert len(ticks) == 1 and queued[-1][1] == 72  # one chain of ticks, first due with the canary

    def tick():
        current = deps.incidents.get(incident_id)
        event = FailureEvent(run_id=0, source="incident", incident_id=incident_id, incident_tick=current.tick_seq)
        return process(event, deps, owner="tick").detail

    clock.now = T0 + timedelta(seconds=71)
    assert "waiting" in tick()  # too early: nothing rerun
    assert api.repairs == [1]
    clock.now = T0 + timedelta(seconds=72)
    assert "canary" in tick()
    assert len(api.repairs) == 2  # exactly one canary
    canary_key = deps.incidents.get(incident_id).canary_key
    assert deps.store.get(canary_key).canary and deps.store.get(canary_key).status == "done"

    clock.now += timedelta(seconds=20)
    assert "failed" in tick()  # the outage goes on: the canary's repair failed
    wait = deps.incidents.get(incident_id).next_canary_at - clock.now
    assert timedelta(seconds=96) <= wait <= timedelta(seconds=144)  # doubled, +-20 %
    clock.now += wait - timedelta(seconds=1)
    tick()
    assert len(api.repairs) == 2  # no rerun inside the backoff

    api.outage = False
    clock.now += timedelta(seconds=1)
    tick()  # the second canary
    assert len(api.repairs) == 3
    clock.now += timedelta(seconds=20)
    detail = tick()
    assert "canary succeeded" in detail
    releases = [(e, d) for e, d in queued if e.incident_release]
    held = [r for r in (deps.store.get(f"ws:{i}:0") for i in (2, 3, 4)) if r.status == "held"]
    # Every member row marked held gets a release message (the failed first canary's is a no-op: not held now).
    assert len(held) == 1 and len(releases) == 2 and all(0 <= d <= 120 for _, d in releases)
    for event, _ in releases:
        process(event, deps, owner="release")
        process(event, deps, owner="release-again")  # a redelivered release message sends nothing
    assert len(api.repairs) == 4 and len(set(api.repairs)) == 4  # every job once more, none twice at once
    assert [e.subject for e in transport.sent].count("Incident resolved: 4 jobs had one cause") == 1


def test_an_outage_past_the_limit_escalates_once(world):
    deps, api, transport, clock, queued = world
    for run_id, job_id in ((1, 101), (2, 102)):
        fail(deps, api, run_id, job_id)
    incident_id = deps.store.get("ws:2:0").incident_id
    clock.now = T0 + timedelta(seconds=3600)
    drive.sweep(deps, clock.now, job_of=lambda api, job_id: None)
    drive.sweep(deps, clock.now + timedelta(seconds=5), job_of=lambda api, job_id: None)
    escalations = [e for e in transport.sent if e.subject.startswith("Incident escalated")]
    assert len(escalations) == 1
    assert deps.incidents.get(incident_id).escalated_at == T0 + timedelta(seconds=3600)


def test_the_first_members_email_not_written_yet_when_the_incident_opens_is_never_sent(world):
    deps, api, transport, clock, _ = world
    from shared.incidents.join import join

    api.runs[1] = failed_run(1, 101)
    # The first failure joined (alone) and is still acting: its email is not in the outbox yet.
    first = deps.store.claim(DecisionRecord(key="ws:1:0", workspace_id="ws", job_id=101, job_name="job_101", run_id=1,
                                            chain_id="ws:1"), "slow", now=T0).record
    first = first.model_copy(update={"status": "decided", "action": Action.RETRY, "category": Category.INFRASTRUCTURE,
                                     "fingerprint": "f", "incident_key": "ws|code|CLOUD_FAILURE"})
    first = deps.store.save(first, owner="slow")
    assert join(first, api.get_job(101), deps, now=T0) == {"notify_after": T0 + timedelta(seconds=60)}
    fail(deps, api, 2, 102)  # a second job: the incident opens

    late = first.model_copy(update={"status": "acted", "notify_after": None})
    assert deps.notifier.notify(late, api.get_job(101)) == ["ws:1:0:retry"]
    clock.now += timedelta(minutes=10)
    deps.notifier.flush(clock.now)
    assert [e.subject for e in transport.sent] == ["Incident: 2 jobs failed with one cause"]
    assert deps.notifier.outbox.get("ws:1:0:retry").status == "folded"
    assert deps.store.get("ws:1:0").folded_into == deps.store.get("ws:2:0").incident_id


def test_jobs_that_joined_after_the_opening_get_one_update_once_the_interval_has_passed(world):
    deps, api, transport, clock, _ = world
    for run_id, job_id in ((1, 101), (2, 102), (3, 103), (4, 104)):
        fail(deps, api, run_id, job_id)
    incident_id = deps.store.get("ws:2:0").incident_id
    clock.now = T0 + timedelta(seconds=899)
    drive.sweep(deps, clock.now, job_of=lambda api, job_id: None)
    assert len(transport.sent) == 1  # inside the interval: nothing more
    clock.now = T0 + timedelta(seconds=900)
    drive.sweep(deps, clock.now, job_of=lambda api, job_id: None)
    drive.sweep(deps, clock.now + timedelta(seconds=10), job_of=lambda api, job_id: None)
    assert [e.subject for e in transport.sent] == ["Incident: 2 jobs failed with one cause",
                                                   "Incident update: 4 jobs now share one cause"]
    assert "job_104" in transport.sent[1].text and deps.incidents.get(incident_id).state == "open"


def test_the_first_canary_never_comes_within_a_backoff_of_the_first_failures_own_rerun():
    settings = Settings(incident_canary_backoff_seconds=60, incident_canary_max_backoff_seconds=600)
    opened = T0 + timedelta(seconds=2)  # the second job, two seconds after the first one's rerun
    for n in range(50):  # whatever the jitter of the incident's first wait
        due = drive.first_canary_at(settings, opened, f"inc-{n}", first_seen=T0)
        assert T0 + timedelta(seconds=72) <= due <= opened + timedelta(seconds=72)


def test_the_jitter_differs_across_incidents_and_stays_inside_its_bounds_for_each():
    draws = [policy.spread(f"inc-{n}", k)() for n in range(200) for k in range(3)]
    assert all(0 <= d < 1 for d in draws) and len({round(d, 6) for d in draws}) == len(draws)
    assert min(draws) < 0.1 and max(draws) > 0.9  # spread over the whole range: canaries do not fall in step
    assert policy.spread("inc-1", 0)() == policy.spread("inc-1", 0)()  # every driver computes the same wait


class FakePagerDuty:
    """A channel that keeps the PagerDuty events it would post (shared/notify/channels/payloads.py builds them)."""

    name = "pagerduty"

    def __init__(self) -> None:
        self.events: list[dict] = []

    def payload(self, message):
        from shared.notify.channels import payloads

        return payloads.pagerduty(message, "routing-key")

    def send(self, body):
        self.events.append(body)
        return body["dedup_key"]


def test_pagerduty_hears_the_incident_once_under_its_id_escalation_included_and_is_resolved_on_recovery(world):
    deps, api, transport, clock, queued = world
    pagerduty = FakePagerDuty()
    deps.notifier.channels = {"pagerduty": pagerduty}
    deps.notifier.routes = {"incident": ("pagerduty",), "escalation": ("pagerduty",), "resolved": ("pagerduty",)}
    for run_id, job_id in ((1, 101), (2, 102), (3, 103)):
        fail(deps, api, run_id, job_id)
    incident_id = deps.store.get("ws:2:0").incident_id
    clock.now = T0 + timedelta(seconds=3600)
    drive.sweep(deps, clock.now, job_of=lambda api, job_id: None)  # escalates; the canary goes out
    api.outage = False
    canary = deps.incidents.get(incident_id).canary_key
    api.runs[int(canary.split(":")[1])] = failed_run(int(canary.split(":")[1]), 0, ["FAILED", "SUCCESS"])
    deps.store.save(deps.store.get(canary).model_copy(update={"outcome": "succeeded"}))
    clock.now += timedelta(seconds=30)
    drive.sweep(deps, clock.now, job_of=lambda api, job_id: None)  # the canary succeeded: resolved

    actions = [(e["event_action"], e["dedup_key"]) for e in pagerduty.events]
    assert actions == [("trigger", incident_id), ("trigger", incident_id), ("resolve", incident_id)]
    assert pagerduty.events[1]["payload"]["summary"].startswith("Incident escalated")
    assert deps.incidents.get(incident_id).state == "resolved"


def test_each_listed_job_keeps_its_own_error_line_when_it_says_more_than_the_shared_diagnosis():
    """Grouped by fingerprint, two jobs may miss different tables: the folded email still says which."""
    from shared.incidents.model import JobRef
    from shared.incidents.notices import render_notice

    diagnosis = "TABLE_OR_VIEW_NOT_FOUND on main.sales.orders"
    jobs = [JobRef(key="ws:1:0", job_id=1, job_name="orders_daily", run_id=1, cause_line=diagnosis),
            JobRef(key="ws:2:0", job_id=2, job_name="hr_people", run_id=2,
                   cause_line="TABLE_OR_VIEW_NOT_FOUND on main.hr.people")]
    incident = _incident(diagnosis=diagnosis, jobs=jobs, job_count=2, category=Category.DATA)
    notice = render_notice(incident, "opened", ["a@contoso.example"], "n1", Settings(_env_file=None))
    assert "main.hr.people" in notice.text and "main.hr.people" in notice.html
    assert notice.text.count(diagnosis) == 1, "the shared diagnosis is not repeated under the job that has it"


def test_with_a_higher_threshold_every_member_before_the_opening_waits_to_be_folded(world):
    """INCIDENT_MIN_JOBS=3: the second job's email must not go out on its own just before the third opens it."""
    deps, api, transport, clock, _ = world
    deps.settings = deps.settings.model_copy(update={"incident_min_jobs": 3})
    deps.notifier.settings = deps.settings
    for run_id, job_id in ((1, 101), (2, 102), (3, 103)):
        fail(deps, api, run_id, job_id)
        clock.now += timedelta(seconds=5)
    clock.now += timedelta(minutes=5)
    deps.notifier.flush(clock.now)

    assert [e.subject for e in transport.sent] == ["Incident: 3 jobs failed with one cause"]
    assert all(deps.store.get(f"ws:{r}:0").folded_into for r in (1, 2, 3))
