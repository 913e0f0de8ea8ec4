"""The timer tells people how a rerun on a resized cluster ended: which size worked, and whether it was reverted."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from shared.databricks.models import Job, Run
from shared.decision import DecisionRecord
from shared.exceptions import TransientError
from shared.notify import Notifier
from shared.notify.outbox import MemoryOutbox
from shared.notify.sample import sample_record
from shared.notify.transports.base import EmailTransport, OutgoingEmail, SendResult
from shared.pipeline import PipelineDeps
from shared.poller import poll
from shared.settings import Settings
from shared.state import MemoryStateStore
from shared.store import MemoryDecisionStore
from shared.taxonomy import Action

NOW = datetime(2025, 11, 24, 10, 30, tzinfo=timezone.utc)
BEFORE = {"node_type_id": "Standard_DS3_v2", "num_workers": 4}
AFTER = {"node_type_id": "Standard_DS4_v2", "num_workers": 8}
REPAIR_ID = 5501


class Transport(EmailTransport):
    name = "memory"

    def __init__(self) -> None:
        self.sent: list[OutgoingEmail] = []

    def _send(self, email: OutgoingEmail) -> SendResult:
        self.sent.append(email)
        return SendResult(self.name, provider_id=str(len(self.sent)))


class FlakyOutbox(MemoryOutbox):
    """Unreachable (every Table operation) until `down` is cleared."""

    down = False

    def __init__(self):
        super().__init__()
        table, outbox = self._table, self

        class Flaky:
            def __getattr__(self, name):
                operation = getattr(table, name)

                def maybe_fail(*args, **kwargs):
                    if outbox.down:
                        raise TransientError(f"table storage unavailable ({name} outbox row): ServiceRequestError")
                    return operation(*args, **kwargs)
                return maybe_fail

        self._table = Flaky()


@dataclass
class JobsApi:
    """runs/get of the repaired run 911, jobs/get and jobs/update of job 42 whose cluster was resized."""

    result: str = "SUCCESS"
    cluster: dict = field(default_factory=lambda: dict(AFTER))
    job_reads: int = 0
    updates: list[dict] = field(default_factory=list)

    def list_runs(self, *, start_time_from, start_time_to=None, completed_only=True):
        return []

    def get_run(self, run_id):
        state = {"life_cycle_state": "TERMINATED", "result_state": self.result}
        return Run.model_validate({
            "run_id": 911, "job_id": 42, "state": state,
            "repair_history": [{"type": "ORIGINAL", "id": 911, "state": {"life_cycle_state": "TERMINATED",
                                                                           "result_state": "FAILED"}},
                               {"type": "REPAIR", "id": REPAIR_ID, "state": state}],
        })

    def get_job(self, job_id):
        self.job_reads += 1
        return Job.model_validate({"job_id": job_id, "settings": {
            "name": "nightly_etl", "email_notifications": {"on_failure": ["owner@example.com"]},
            "job_clusters": [{"job_cluster_key": "etl_cluster", "new_cluster": dict(self.cluster)}],
        }})

    def update_job_cluster(self, job_id, job_cluster_key, new_cluster):
        self.updates.append(new_cluster)
        self.cluster = dict(new_cluster)


def pending(action=Action.RETRY_WITH_NEW_PARAMS, **changes) -> DecisionRecord:
    record = sample_record(action)
    record.key, record.chain_id = "default:911:0", "default:911"
    record.status, record.outcome, record.repair_id = "done", "pending", REPAIR_ID
    record.notifications = [f"{record.key}:retry"]
    for name, value in changes.items():
        setattr(record, name, value)
    return record


def deps_for(api, record, outbox=None, **settings):
    transport = Transport()
    values = {"databricks_workspace_url": "https://adb-1.azuredatabricks.net", "email_enabled": True,
              "email_sender": "agent@example.com", **settings}
    config = Settings(**values)
    deps = PipelineDeps(
        settings=config, jobs_api=lambda ws: api, workspace_key=lambda ws: "default", store=MemoryDecisionStore(),
        state=MemoryStateStore(), notifier=Notifier(config, outbox or MemoryOutbox(), transport, clock=lambda: NOW),
        classify=None, enqueue=lambda event, delay: None,
    )
    deps.store.save(record)
    return deps, transport


def test_a_resized_rerun_that_succeeded_is_reverted_and_people_hear_which_size_worked():
    api = JobsApi()
    deps, transport = deps_for(api, pending())

    poll(deps, now=NOW)

    record = deps.store.get("default:911:0")
    assert record.outcome == "succeeded" and record.resize.reverted
    assert api.updates == [BEFORE]
    [email] = transport.sent
    assert email.subject == "[RESOLVED · resource] nightly_etl — succeeded on Standard_DS4_v2 (job cluster reverted)"
    assert email.to == ("owner@example.com",)
    assert "make the change permanent in the job's settings" in " ".join(email.text.split())
    assert record.notifications == ["default:911:0:retry", "default:911:0:outcome"]
    assert api.job_reads == 1, "the job read for the revert also addresses the email"


def test_the_next_tick_sends_nothing_again():
    api = JobsApi()
    deps, transport = deps_for(api, pending())

    poll(deps, now=NOW)
    poll(deps, now=NOW)

    assert len(transport.sent) == 1 and len(api.updates) == 1


def test_with_resize_revert_off_the_email_says_the_larger_size_stays():
    api = JobsApi()
    deps, transport = deps_for(api, pending(), resize_revert=False)

    poll(deps, now=NOW)

    record = deps.store.get("default:911:0")
    assert api.updates == [] and record.resize.kept == "setting" and not record.resize.reverted
    [email] = transport.sent
    assert email.subject.endswith("succeeded on Standard_DS4_v2 (larger size kept)")
    assert "RESIZE_REVERT is false" in email.text
    assert api.job_reads == 1, "read once, for the recipients"


def test_a_cluster_someone_changed_after_the_resize_is_left_and_the_email_says_so():
    api = JobsApi(cluster={"node_type_id": "Standard_DS5_v2", "num_workers": 8})
    deps, transport = deps_for(api, pending())

    poll(deps, now=NOW)

    assert api.updates == [] and deps.store.get("default:911:0").resize.kept == "changed"
    assert "(job cluster changed by someone else, left as is)" in transport.sent[0].subject


def test_a_cluster_left_as_changed_is_not_looked_at_again_when_the_email_is_retried():
    api, outbox = JobsApi(cluster={"node_type_id": "Standard_DS5_v2", "num_workers": 8}), FlakyOutbox()
    outbox.down = True
    deps, transport = deps_for(api, pending(), outbox=outbox)

    poll(deps, now=NOW)
    outbox.down = False
    poll(deps, now=NOW)

    record = deps.store.get("default:911:0")
    assert record.outcome == "succeeded" and record.done.count("changed by someone else") == 1
    assert api.updates == [] and len(transport.sent) == 1


def test_a_rerun_that_failed_again_leaves_its_cluster_and_its_email_to_the_next_decision():
    api = JobsApi(result="FAILED")
    deps, transport = deps_for(api, pending())

    poll(deps, now=NOW)

    assert deps.store.get("default:911:0").outcome == "failed"
    assert api.updates == []
    assert transport.sent == []


def test_a_plain_reruns_end_sends_no_email():
    api = JobsApi()
    deps, transport = deps_for(api, pending(Action.RETRY))

    poll(deps, now=NOW)

    assert deps.store.get("default:911:0").outcome == "succeeded"
    assert transport.sent == [] and api.job_reads == 0


def test_a_job_that_turned_the_agent_off_gets_no_outcome_email():
    api = JobsApi()
    deps, transport = deps_for(api, pending(agent_enabled=False))

    poll(deps, now=NOW)

    assert api.updates == [BEFORE], "the resize is still put back"
    assert transport.sent == []
    assert deps.store.get("default:911:0").notifications == ["default:911:0:retry"]


def test_an_unreachable_outbox_leaves_the_email_to_the_next_tick_without_reverting_twice():
    api, outbox = JobsApi(), FlakyOutbox()
    outbox.down = True
    deps, transport = deps_for(api, pending(), outbox=outbox)

    report = poll(deps, now=NOW)

    assert report.errors and "table storage unavailable" in report.errors[0]
    record = deps.store.get("default:911:0")
    assert record.outcome == "pending" and record.resize.reverted, "the revert is on record, the rest is not"
    assert transport.sent == []

    outbox.down = False
    poll(deps, now=NOW)

    record = deps.store.get("default:911:0")
    assert record.outcome == "succeeded" and record.done.count("reverted job cluster") == 1
    assert api.updates == [BEFORE]
    assert [m.subject for m in transport.sent] == [
        "[RESOLVED · resource] nightly_etl — succeeded on Standard_DS4_v2 (job cluster reverted)"
    ]


def test_a_rerun_that_succeeded_resolves_what_the_channels_opened_for_its_chain():
    from shared.notify.channels.send import ChannelSender

    class Sender(ChannelSender):
        def send(self, body):
            self.bodies.append(body)
            return body.get("dedup_key", "")

    api = JobsApi()
    deps, _ = deps_for(api, pending(Action.RETRY), notify_channel_routes="resolved=pagerduty")
    pagerduty = Sender("pagerduty", url=lambda: "http://127.0.0.1:9/v2/enqueue", routing_key=lambda: "R" * 32)
    pagerduty.bodies = []
    deps.notifier.channels, deps.notifier.routes = {"pagerduty": pagerduty}, {"resolved": ("pagerduty",)}

    poll(deps, now=NOW)
    poll(deps, now=NOW)

    assert [b["event_action"] for b in pagerduty.bodies] == ["resolve"]
    assert pagerduty.bodies[0]["dedup_key"] == "default:911"
    assert "default:911:resolved:pagerduty" in deps.store.get("default:911:0").notifications
