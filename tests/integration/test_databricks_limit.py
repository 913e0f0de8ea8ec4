"""The Jobs API request limit in the real client against the simulator: every request and every retry takes a
token, callers are spaced at the rate, and several threads of one instance share one workspace bucket."""

from __future__ import annotations

import threading
import time

from shared.databricks.auth import PatToken
from shared.databricks.client import DatabricksClient
from shared.databricks.limiter import RequestLimit, WorkspaceLimiters
from tests.fixtures.databricks import SIM_TOKEN, TEST_RETRY
from tests.integration.test_databricks_client import failed_run


class CountingBucket:
    def __init__(self) -> None:
        self.taken = 0

    def acquire(self, path: str | None = None) -> float:
        self.taken += 1
        return 0.0


def test_every_request_and_every_retry_takes_a_token(sim):
    run_id = failed_run(sim)
    bucket = CountingBucket()
    client = DatabricksClient(sim.url, PatToken(SIM_TOKEN), timeout=5.0, retry=TEST_RETRY, sleep=lambda s: None,
                              limit=bucket)  # type: ignore[arg-type]
    sim.inject("throttle", path="/runs/get", times=2, retry_after=0)
    client.get_run(run_id)
    assert sim.request_count("jobs/runs/get") == 3
    assert bucket.taken == 3  # the first try and the two retries urllib3 made inside one call
    client.close()


def test_threads_of_one_instance_share_the_workspace_rate(sim):
    run_id = failed_run(sim)
    limiters = WorkspaceLimiters(RequestLimit(workspace_rate=40, burst=1, max_instances=2))  # 20/s for this instance
    clients = [DatabricksClient(sim.url, PatToken(SIM_TOKEN), timeout=5.0, retry=TEST_RETRY,
                                limit=limiters.for_workspace("ws")) for _ in range(4)]
    started = time.monotonic()

    def work(client: DatabricksClient) -> None:
        for _ in range(10):
            client.get_run_output(sim.run(run_id)["tasks"][0]["run_id"])

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    elapsed = time.monotonic() - started
    assert sim.request_count("jobs/runs/get-output") == 40
    assert elapsed >= 39 / 20 * 0.9  # 40 requests at 20/s: the limit held across the four clients
    assert sim.peak_rate(1.0) <= 20 + 1
    for client in clients:
        client.close()


def test_a_client_without_a_limit_is_not_slowed(sim):
    run_id = failed_run(sim)
    client = DatabricksClient(sim.url, PatToken(SIM_TOKEN), timeout=5.0, retry=TEST_RETRY)
    started = time.monotonic()
    for _ in range(20):
        client.get_run(run_id)
    assert time.monotonic() - started < 5
    client.close()
