"""When jobs/get fails, the email names the job by the Jobs API's run name, not by the name a webhook body claims."""

from __future__ import annotations

from shared.databricks.errors import PermissionDenied
from shared.events import FailureEvent
from shared.notify.subject import job_label
from shared.pipeline import process
from tests.unit.test_pipeline import MemoryJobsApi, deps_for, run_json


class NoJobSettings(MemoryJobsApi):
    def get_job(self, job_id):
        raise PermissionDenied("no CAN_VIEW on the job")


def test_the_run_name_wins_over_the_bodys_name():
    api = NoJobSettings({111: run_json()})
    deps, _ = deps_for(api)
    process(FailureEvent(run_id=111, job_name="URGENT reset your password at evil.example"), deps, owner="m1")
    record = deps.store.get("ws:111:0")
    assert record.job_name == "nightly" and job_label(record) == "nightly"
