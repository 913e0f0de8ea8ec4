"""The local Functions host (localdev.host) runs a v2 FunctionApp against real Azurite with host.json semantics.

The app under test is a small sample defined here, not the project's function_app.py: these tests specify the
harness, and the end-to-end tests use it on the real app.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from dataclasses import dataclass, field

import azure.functions as func
import pytest
import requests
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from localdev.host import AppAlreadyIndexedError, LocalFunctionsHost, SettingNotFoundError

KEY = "test-host-key"
HOST_JSON = {"version": "2.0", "extensions": {"queues": {"maxDequeueCount": 3, "visibilityTimeout": "00:00:00"}}}


@dataclass
class Seen:
    """What the sample functions saw, in order."""

    messages: list[tuple[str, int]] = field(default_factory=list)
    timers: list[bool] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def sample_app() -> tuple[func.FunctionApp, Seen]:
    """A fresh app (get_functions() may be called once per app object) and the record of what it saw."""
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    seen = Seen()

    @app.route(route="hooks/{source}", methods=["POST"])
    @app.queue_output(arg_name="out", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
    def webhook(req: func.HttpRequest, out: func.Out[str]) -> func.HttpResponse:
        out.set(req.get_body().decode())
        return func.HttpResponse(f"accepted from {req.route_params['source']}", status_code=202)

    @app.route(route="outbox", methods=["POST"])
    @app.queue_output(arg_name="out", queue_name="%OUTBOX_QUEUE%", connection="AzureWebJobsStorage")
    def outbox(req: func.HttpRequest, out: func.Out[list[str]]) -> func.HttpResponse:
        out.set(req.get_body().decode().splitlines())
        return func.HttpResponse(status_code=202)

    @app.route(route="ping", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
    def ping(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("pong")

    @app.route(route="boom", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
    def boom(req: func.HttpRequest) -> func.HttpResponse:
        raise RuntimeError("secret detail that must not reach the caller")

    @app.queue_trigger(arg_name="msg", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
    def process(msg: func.QueueMessage) -> None:
        body = msg.get_body().decode()
        with seen.lock:
            seen.messages.append((body, msg.dequeue_count))
        if body == "fail" or (body == "fail-once" and msg.dequeue_count == 1):
            raise RuntimeError(f"failing on purpose: {body}")
        if body == "slow":
            time.sleep(1.0)

    @app.timer_trigger(arg_name="timer", schedule="%TICK_SCHEDULE%", run_on_startup=False)
    def tick(timer: func.TimerRequest) -> None:
        seen.timers.append(timer.past_due)

    return app, seen


@dataclass
class Running:
    host: LocalFunctionsHost
    seen: Seen
    work_queue: QueueClient
    outbox_queue: QueueClient
    connection_string: str

    def url(self, path: str) -> str:
        return f"{self.host.base_url}/api/{path}"

    def queue(self, name: str) -> QueueClient:
        return QueueClient.from_connection_string(self.connection_string, name)


def start_host(connection_string: str, name: str, host_json: dict = HOST_JSON) -> Running:
    app, seen = sample_app()
    env = {"WORK_QUEUE": f"{name}-work", "OUTBOX_QUEUE": f"{name}-outbox", "TICK_SCHEDULE": "0 */5 * * * *"}
    host = LocalFunctionsHost(app, connection_string, host_json, env, host_key=KEY).start()
    return Running(host, seen, QueueClient.from_connection_string(connection_string, env["WORK_QUEUE"]),
                   QueueClient.from_connection_string(connection_string, env["OUTBOX_QUEUE"]), connection_string)


@pytest.fixture
def running(storage_connection_string, unique_name):
    running = start_host(storage_connection_string, unique_name)
    yield running
    running.host.stop()


def enqueue_base64(queue: QueueClient, body: str) -> None:
    """Enqueue as a producer outside the host must for a trigger with the default base64 encoding."""
    create_if_missing(queue)
    QueueClient.from_queue_url(queue.url, credential=queue.credential,
                               message_encode_policy=TextBase64EncodePolicy()).send_message(body)


def create_if_missing(queue: QueueClient) -> None:
    with contextlib.suppress(ResourceExistsError):
        queue.create_queue()


def post(running: Running, path: str, body: str, **kwargs) -> requests.Response:
    return requests.post(running.url(path), data=body.encode(), headers={"x-functions-key": KEY}, timeout=10, **kwargs)


# -- HTTP trigger and queue output ------------------------------------------------------------------------------


def test_queue_output_of_an_http_function_is_stored_base64_in_azurite(running):
    assert post(running, "outbox", "first\nsecond").status_code == 202

    stored = [m.content for m in running.outbox_queue.peek_messages(max_messages=32)]
    assert stored == [base64.b64encode(b"first").decode(), base64.b64encode(b"second").decode()]


def test_queue_function_sees_the_decoded_body_of_an_http_output_with_dequeue_count_1(running):
    post(running, "hooks/databricks", '{"run_id": 7}')
    running.host.wait_idle(10)

    assert running.seen.messages == [('{"run_id": 7}', 1)]


def test_http_function_gets_route_params_and_its_response_is_returned(running):
    response = post(running, "hooks/databricks", "x")

    assert (response.status_code, response.text) == (202, "accepted from databricks")


def test_queue_output_is_stored_as_plain_text_with_message_encoding_none(storage_connection_string, unique_name):
    host_json = {"extensions": {"queues": {"messageEncoding": "none", "maxDequeueCount": 3}}}
    running = start_host(storage_connection_string, unique_name, host_json)
    try:
        post(running, "outbox", "plain")
        assert [m.content for m in running.outbox_queue.peek_messages()] == ["plain"]
    finally:
        running.host.stop()


# -- HTTP auth, routes, methods, errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("headers, params", [({}, {}), ({"x-functions-key": "wrong"}, {}), ({}, {"code": "wrong"})],
                         ids=["no key", "wrong header key", "wrong code"])
def test_function_level_route_without_a_valid_key_is_401(running, headers, params):
    response = requests.post(running.url("hooks/x"), data=b"x", headers=headers, params=params, timeout=10)

    assert response.status_code == 401
    assert running.host.invocations("webhook") == []


@pytest.mark.parametrize("headers, params", [({"x-functions-key": KEY}, {}), ({}, {"code": KEY})],
                         ids=["x-functions-key header", "code parameter"])
def test_function_level_route_with_the_key_in_header_or_code_is_served(running, headers, params):
    response = requests.post(running.url("hooks/x"), data=b"x", headers=headers, params=params, timeout=10)

    assert response.status_code == 202


def test_anonymous_route_needs_no_key(running):
    response = requests.get(running.url("ping"), timeout=10)

    assert (response.status_code, response.text) == (200, "pong")


def test_wrong_method_is_405(running):
    response = requests.get(running.url("hooks/x"), headers={"x-functions-key": KEY}, timeout=10)

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


def test_unknown_route_is_404(running):
    assert requests.get(running.url("nowhere"), timeout=10).status_code == 404


def test_http_function_that_raises_is_500_with_a_generic_body(running):
    response = requests.get(running.url("boom"), timeout=10)

    assert response.status_code == 500
    assert "secret detail" not in response.text
    assert running.host.invocations("boom")[0].error == "RuntimeError: secret detail that must not reach the caller"


# -- queue trigger: retries and poison ---------------------------------------------------------------------------


def test_failing_message_is_tried_max_dequeue_count_times_then_moved_to_poison(running):
    enqueue_base64(running.work_queue, "fail")
    running.host.wait_idle(10)

    assert running.seen.messages == [("fail", 1), ("fail", 2), ("fail", 3)]
    poison = running.queue(running.work_queue.queue_name + "-poison").peek_messages(max_messages=32)
    assert [m.content for m in poison] == [base64.b64encode(b"fail").decode()]
    assert running.work_queue.get_queue_properties().approximate_message_count == 0


def test_message_that_fails_once_succeeds_on_dequeue_count_2(running):
    enqueue_base64(running.work_queue, "fail-once")
    running.host.wait_idle(10)

    outcomes = [(i.outcome, i.dequeue_count) for i in running.host.invocations("process")]
    assert outcomes == [("failed", 1), ("succeeded", 2)]
    assert running.work_queue.get_queue_properties().approximate_message_count == 0


def test_failed_message_comes_back_after_the_visibility_timeout(storage_connection_string, unique_name):
    host_json = {"extensions": {"queues": {"maxDequeueCount": 3, "visibilityTimeout": "00:00:01"}}}
    running = start_host(storage_connection_string, unique_name, host_json)
    try:
        enqueue_base64(running.work_queue, "fail-once")
        running.host.wait_idle(10)
    finally:
        running.host.stop()

    failed, succeeded = running.host.invocations("process")
    assert (failed.outcome, succeeded.outcome) == ("failed", "succeeded")
    assert (succeeded.started_at - failed.started_at).total_seconds() >= 1.0


def test_message_that_is_not_base64_goes_to_poison_without_an_invocation(running):
    create_if_missing(running.work_queue)
    running.work_queue.send_message("not base64!")  # the v12 SDK's default: plain text
    running.host.wait_idle(10)

    assert running.seen.messages == []
    poison = running.queue(running.work_queue.queue_name + "-poison").peek_messages()
    assert [m.content for m in poison] == ["not base64!"]


# -- settings, timers, idleness, indexing -------------------------------------------------------------------------


def test_setting_expressions_in_queue_names_and_schedules_are_resolved(running):
    functions = running.host.functions

    assert functions["process"].queue_name == running.work_queue.queue_name
    assert functions["webhook"].outputs[0].queue_name == running.work_queue.queue_name
    assert functions["tick"].schedule == "0 */5 * * * *"


def test_undefined_setting_is_an_error_when_the_host_is_built(storage_connection_string):
    app, _ = sample_app()

    with pytest.raises(SettingNotFoundError, match="WORK_QUEUE"):
        LocalFunctionsHost(app, storage_connection_string, HOST_JSON, {"TICK_SCHEDULE": "0 * * * * *"})


@pytest.mark.parametrize("past_due", [False, True])
def test_run_timer_passes_past_due(running, past_due):
    invocation = running.host.run_timer("tick", past_due=past_due)

    assert invocation.succeeded
    assert running.seen.timers == [past_due]


def test_wait_idle_raises_while_an_invocation_is_still_running(running):
    enqueue_base64(running.work_queue, "slow")

    with pytest.raises(TimeoutError):
        running.host.wait_idle(0.3)
    running.host.wait_idle(10)
    assert [i.outcome for i in running.host.invocations("process")] == ["succeeded"]


def test_a_second_host_from_the_same_app_object_is_refused(storage_connection_string, unique_name):
    app, _ = sample_app()
    env = {"WORK_QUEUE": unique_name, "OUTBOX_QUEUE": unique_name, "TICK_SCHEDULE": "0 * * * * *"}
    LocalFunctionsHost(app, storage_connection_string, HOST_JSON, env)

    with pytest.raises(AppAlreadyIndexedError):
        LocalFunctionsHost(app, storage_connection_string, HOST_JSON, env)


# -- the `func start` stand-in -------------------------------------------------------------------------------------

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROJECT_APP = textwrap.dedent("""
    import os
    import azure.functions as func

    app = func.FunctionApp()

    @app.route(route="greeting", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
    def greeting(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(os.environ["GREETING"])
""")


def test_entry_point_serves_a_project_with_its_local_settings_until_interrupted(tmp_path, storage_connection_string):
    (tmp_path / "function_app.py").write_text(PROJECT_APP)
    (tmp_path / "host.json").write_text(json.dumps(HOST_JSON))
    (tmp_path / "local.settings.json").write_text(json.dumps(
        {"Values": {"AzureWebJobsStorage": storage_connection_string, "GREETING": "hello from Values"}}))
    env = {k: v for k, v in os.environ.items() if k not in ("AzureWebJobsStorage", "GREETING")}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    process = subprocess.Popen([sys.executable, "-m", "localdev.host", "--port", "0"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        printed = ""
        while "Press Ctrl-C" not in printed and process.poll() is None:
            printed += process.stdout.readline()
        url = re.search(r"greeting: \[GET\] (\S+)", printed).group(1)

        assert requests.get(url, timeout=10).text == "hello from Values"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# -- the lease of a running message -----------------------------------------------------------------------------

def test_a_message_stays_invisible_while_its_invocation_outlasts_the_lease(storage_connection_string, unique_name):
    """The host renews a running message's lease; without it a second invocation would take the message."""
    app = func.FunctionApp()
    started: list[int] = []

    @app.queue_trigger(arg_name="msg", queue_name=f"{unique_name}-slow", connection="AzureWebJobsStorage")
    def slow(msg: func.QueueMessage) -> None:
        started.append(msg.dequeue_count)
        time.sleep(5.0)  # two and a half leases

    queue = QueueClient.from_connection_string(storage_connection_string, f"{unique_name}-slow")
    enqueue_base64(queue, "work")
    host = LocalFunctionsHost(app, storage_connection_string, HOST_JSON, {}, host_key=KEY, lease_seconds=2).start()
    try:
        host.wait_idle(20)
    finally:
        host.stop()
    assert started == [1]
    assert [i.outcome for i in host.invocations("slow")] == ["succeeded"]
    assert queue.get_queue_properties().approximate_message_count == 0  # deleted with the renewed pop receipt


SLOW_PROJECT_APP = textwrap.dedent("""
    import time
    import azure.functions as func

    app = func.FunctionApp()

    @app.route(route="work", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
    @app.queue_output(arg_name="out", queue_name="slow-work", connection="AzureWebJobsStorage")
    def work(req: func.HttpRequest, out: func.Out[str]) -> func.HttpResponse:
        out.set("work")
        return func.HttpResponse(status_code=202)

    @app.queue_trigger(arg_name="msg", queue_name="slow-work", connection="AzureWebJobsStorage")
    def slow(msg: func.QueueMessage) -> None:
        print("invocation started", flush=True)
        time.sleep(60)
""")


def emulator_connection_string(blob: int, queue: int, table: int) -> str:
    from localdev.azurite import ACCOUNT, ACCOUNT_KEY

    return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{blob}/{ACCOUNT};QueueEndpoint=http://127.0.0.1:{queue}/{ACCOUNT};"
            f"TableEndpoint=http://127.0.0.1:{table}/{ACCOUNT};")


def start_entry_point(tmp_path, *args: str) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if k != "AzureWebJobsStorage"}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    process = subprocess.Popen([sys.executable, "-m", "localdev.host", "--port", "0", *args], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    printed = ""
    while "Press Ctrl-C" not in printed and process.poll() is None:
        printed += process.stdout.readline()
    return process, printed


def test_the_entry_point_starts_azurite_where_the_emulator_is_configured_and_stops_within_two_seconds(tmp_path):
    """A copied local.settings.json names the emulator: `make run` starts it there; Ctrl-C during a long
    invocation stops everything within two seconds (the message comes back after its lease, as after a restart)."""
    from localdev.ports import free_port, is_listening

    ports = (free_port(), free_port(), free_port())
    (tmp_path / "function_app.py").write_text(SLOW_PROJECT_APP)
    (tmp_path / "host.json").write_text(json.dumps(HOST_JSON))
    (tmp_path / "local.settings.json").write_text(json.dumps(
        {"Values": {"AzureWebJobsStorage": emulator_connection_string(*ports)}}))
    process, printed = start_entry_point(tmp_path)
    try:
        assert f"Azurite started on 127.0.0.1:{ports[0]}-{ports[2]}" in printed, printed
        assert is_listening(ports[1])
        url = re.search(r"work: \[POST\] (\S+)", printed).group(1)
        assert requests.post(url, timeout=10).status_code == 202
        while "invocation started" not in process.stdout.readline():
            pass
        began = time.monotonic()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - began <= 2.0
        assert not is_listening(ports[1])  # its Azurite stopped too
        assert (tmp_path / ".azurite").is_dir()  # data kept, as `npx azurite --location .azurite` keeps it
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_entry_point_checks_the_apps_settings_before_it_starts(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"Values": {"POLL_SCHEDULE": "99 */5 * * * *",
                                                              "DATABRICKS_HOST": "https://adb-1.azuredatabricks.net"}}))
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("AZUREWEBJOBSSTORAGE", "DATABRICKS_",
                                                                             "POLL_"))}
    result = subprocess.run([sys.executable, "-m", "localdev.host", "--root", str(PROJECT_ROOT), "--settings",
                             str(tmp_path / "bad.json")], cwd=tmp_path, env={**env, "PYTHONPATH": str(PROJECT_ROOT)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "setting POLL_SCHEDULE" in result.stderr and "second field '99'" in result.stderr
    assert "Traceback" not in result.stderr and "Azurite started" not in result.stdout


def test_unreachable_storage_is_reported_within_seconds(caplog):
    """The SDK's default retry waits a minute or more before an error surfaces; the harness says so at once."""
    from localdev.ports import free_port

    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="nowhere", connection="AzureWebJobsStorage")
    def never(msg: func.QueueMessage) -> None:
        raise AssertionError("no message can arrive")

    closed = free_port()
    connection = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={'A' * 88};"
                  f"QueueEndpoint=http://127.0.0.1:{closed}/devstoreaccount1;")
    caplog.set_level(logging.WARNING, logger="localdev.host.queues")
    began = time.monotonic()
    host = LocalFunctionsHost(app, connection, HOST_JSON, {}, host_key=KEY).start()
    try:
        while "polling queue nowhere failed" not in caplog.text and time.monotonic() - began < 15:
            time.sleep(0.1)
    finally:
        host.stop()
    assert "polling queue nowhere failed" in caplog.text
    assert time.monotonic() - began < 10
