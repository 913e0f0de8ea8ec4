"""A queue worker in a child process that SIGKILLs itself at one named point (tests/e2e/test_exactly_once_kills.py).

The points are where a real worker can die between claiming a failure and finishing its record: with the
intent on record but nothing sent, right after Databricks accepted the repair or the jobs/update, after the
action and before the email (what the action did is saved with the done record only), in the middle of the email (before or after it reached ACS), and after the final record.
"""

from __future__ import annotations

import os
import signal
from typing import Any

POINTS = ("before_action", "after_repair_reached", "between_update_and_repair", "after_record",
          "during_email_before_sent", "during_email_after_sent", "after_done_record")


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def acs_transport(endpoint: str, key: str) -> Any:
    from azure.core.credentials import AzureKeyCredential

    from shared.notify.transports.acs import AcsTransport

    return AcsTransport(endpoint=endpoint, credential=AzureKeyCredential(key), poll_interval=0,
                        client_kwargs={"retry_total": 0})


def arm(point: str, deps: Any) -> None:
    """Wrap the dependency the point lives in so that the process dies there."""
    save, jobs_api, transport = deps.store.save, deps.jobs_api, deps.notifier.transport
    notify = deps.notifier.notify

    def save_then_maybe_die(record: Any, **kw: Any) -> Any:
        out = save(record, **kw)
        if (point, out.status) in (("before_action", "decided"), ("after_done_record", "done")):
            die()
        return out

    claim = deps.store.claim

    def claim_then_maybe_die(record: Any, owner: str, *a: Any, **kw: Any) -> Any:
        # The decision with its intent is written with the claim (one insert): the last write before the action.
        out = claim(record, owner, *a, **kw)
        if point == "before_action" and kw.get("decided") and out.reason == "new":
            die()
        return out

    def notify_or_die(record: Any, *a: Any, **k: Any) -> Any:
        if point == "after_record" and record.status == "acted":
            die()
        return notify(record, *a, **k)

    def api_for(workspace_id: Any) -> Any:
        api = jobs_api(workspace_id)
        repair, update = api.repair_run, api.update_job_cluster
        if point == "after_repair_reached":
            def repair_then_die(*a: Any, **k: Any) -> Any:
                repair(*a, **k)
                die()
            api.repair_run = repair_then_die
        if point == "between_update_and_repair":
            def update_then_die(*a: Any, **k: Any) -> Any:
                update(*a, **k)
                die()
            api.update_job_cluster = update_then_die
        return api

    class DyingTransport:
        name = transport.name

        def send(self, email: Any) -> Any:
            if point == "during_email_before_sent":
                die()
            transport.send(email)
            die()

    deps.store.save = save_then_maybe_die
    deps.store.claim = claim_then_maybe_die
    deps.notifier.notify = notify_or_die
    deps.jobs_api = api_for
    if point.startswith("during_email"):
        deps.notifier.transport = DyingTransport()


def work(point: str, env: dict[str, str], body: str, acs_endpoint: str, acs_key: str) -> None:
    """The child: one delivery of `body`, dying at `point`; exits 0 only if the point was never reached."""
    os.environ.update(env)
    from shared import runtime

    runtime.reset()  # forked from the test process: build everything again from this environment
    deps = runtime.deps()
    deps.notifier.transport = acs_transport(acs_endpoint, acs_key)
    arm(point, deps)
    runtime.handle(body, message_id="msg-1", dequeue_count=1)
    os._exit(0)
