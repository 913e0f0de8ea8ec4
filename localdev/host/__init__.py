"""A local stand-in for the Azure Functions host, for tests and the demo (Core Tools cannot be installed here).

It runs the functions registered in a v2 `func.FunctionApp` against real Azure Storage queues (Azurite):
HTTP triggers on loopback with routes, methods and function keys; queue triggers with host.json semantics
(base64 messages, dequeue count, the lease renewed while an invocation runs, visibility timeout after a
failure, `<queue>-poison` after maxDequeueCount); timers on demand. It is a harness, not the host: no scaling,
no dynamic concurrency, no retry policies, no key management, no CRON schedule. Where Core Tools are
installed, `func start` with Azurite is the real local way, and the app must run under it unchanged.

    host = LocalFunctionsHost(load_app("."), connection_string, host_json, os.environ, host_key="k").start()
    requests.post(host.function_url("webhook"), json=..., headers={"x-functions-key": "k"})
    host.wait_idle(10)
    assert [i.outcome for i in host.invocations("process_failure")] == ["succeeded"]
    host.stop()
"""

from localdev.host.core import Invocation, LocalFunctionsHost
from localdev.host.exceptions import (
    AppAlreadyIndexedError,
    LocalHostError,
    SettingNotFoundError,
    UnsupportedFunctionError,
)
from localdev.host.loader import LocalSettings, load_app, read_host_json

__all__ = [
    "AppAlreadyIndexedError",
    "Invocation",
    "LocalFunctionsHost",
    "LocalHostError",
    "LocalSettings",
    "SettingNotFoundError",
    "UnsupportedFunctionError",
    "load_app",
    "read_host_json",
]
