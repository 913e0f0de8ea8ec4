"""LocalFunctionsHost: runs the functions of a v2 `func.FunctionApp` against real storage (Azurite).

A test and demo harness, not the Functions host: see localdev/host/__init__.py for what it does and does not do.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import secrets
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any

import azure.functions as func
from azure.functions.timer import TimerRequest

from localdev.host.bindings import HOST_STORAGE, FunctionSpec, InvocationContext, OutValue, QueueOutput, \
    queue_output_messages
from localdev.host.exceptions import AppAlreadyIndexedError, UnsupportedFunctionError
from localdev.host.http_front import FunctionKeys, HttpFront
from localdev.host.queues import DEFAULT_LEASE_SECONDS, QueueListener, StorageQueues
from localdev.host.settings import QueueOptions, route_prefix, worker_threads

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Invocation:
    """One run of a function. `outcome` is "succeeded" or "failed"; `error` is "ExceptionType: message";
    `duration` is in seconds."""

    function_name: str
    trigger: str
    outcome: str
    started_at: datetime
    duration: float
    invocation_id: str
    dequeue_count: int | None = None
    message_id: str | None = None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.outcome == "succeeded"


class LocalFunctionsHost:
    """Serves HTTP triggers on loopback, polls queue triggers in Azurite, runs timers on demand.

    `app.get_functions()` is called here, once: azure-functions raises on a second call for the same app
    object, so build each host from a freshly imported app (see localdev.host.loader.load_app).
    """

    def __init__(self, app: func.FunctionApp, connection_string: str, host_json: Mapping[str, Any] | None = None,
                 env: Mapping[str, str] | None = None, *, http_port: int = 0, host_key: str | None = None,
                 master_key: str | None = None, function_keys: Mapping[str, str] | None = None,
                 lease_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        if getattr(app, "functions_bindings", None):
            raise AppAlreadyIndexedError("get_functions() was already called on this FunctionApp (azure-functions "
                                         "allows one call per app object); import the app module afresh")
        env = os.environ if env is None else env
        host_json = host_json or {}
        self._state = threading.Condition()
        self._in_flight = 0
        self._started_count = 0
        self._invocations: list[Invocation] = []
        self._specs = {spec.name: spec for spec in (FunctionSpec.from_function(f, env) for f in app.get_functions())}
        self._env = env
        self._connection_string = connection_string
        self._options = QueueOptions.from_host_json(host_json)
        # The Python worker runs sync functions on one thread pool for every function: more invocations in flight
        # than its threads wait for one, whatever host.json allows.
        self._worker_threads = threading.BoundedSemaphore(worker_threads(env))
        self._prefix = route_prefix(host_json)
        self._http_port = http_port
        self._storage: dict[str, StorageQueues] = {}
        self._keys = FunctionKeys(host_key or secrets.token_urlsafe(24), master_key or secrets.token_urlsafe(24),
                                  dict(function_keys or {}))
        self._http = HttpFront([s for s in self._specs.values() if s.trigger == "http"], self._prefix, self._keys,
                               self._invoke_http)
        self._listeners = [
            QueueListener(spec, self._storage_for(spec.connection or HOST_STORAGE), self._options,
                          self._invoke_queue, self._activity, lease_seconds)
            for spec in self._specs.values() if spec.trigger == "queue"
        ]
        for spec in self._specs.values():  # fail now, not at the first message, on an unknown output connection
            for output in spec.outputs:
                self._storage_for(output.connection)
        self._timer_locks = {name: threading.Lock() for name, s in self._specs.items() if s.trigger == "timer"}
        self._stopping = threading.Event()
        self._timer_thread: threading.Thread | None = None
        self._running = False
        self._started_once = False

    # -- what the app holds -----------------------------------------------------------------------------------

    @property
    def functions(self) -> Mapping[str, FunctionSpec]:
        """The indexed functions by name, with `%SETTING%` expressions resolved."""
        return MappingProxyType(self._specs)

    @property
    def host_key(self) -> str:
        """Accepted by every FUNCTION-level HTTP function (random unless given)."""
        return self._keys.host_key

    @property
    def master_key(self) -> str:
        """Accepted by every HTTP function, and the only key for ADMIN level (random unless given)."""
        return self._keys.master_key

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:<port> once started."""
        return self._http.base_url

    def function_url(self, name: str) -> str:
        """URL of an HTTP function's route template, e.g. http://127.0.0.1:7071/api/databricks/webhook."""
        spec = self._spec(name, "http")
        return "/".join(part for part in (self.base_url, self._prefix, (spec.route or name).strip("/")) if part)

    # -- lifecycle --------------------------------------------------------------------------------------------

    def start(self, timer_interval_seconds: float | None = None) -> LocalFunctionsHost:
        """Serve HTTP, start the queue listeners, run `run_on_startup` timers once; with an interval, also run
        every timer function every `timer_interval_seconds` (a demo convenience, not the CRON schedule)."""
        if self._started_once:
            raise RuntimeError("a LocalFunctionsHost starts once; build a new one (from a freshly loaded app)")
        self._started_once = True
        self._running = True
        self._stopping.clear()
        self._http.start(self._http_port)
        for listener in self._listeners:
            listener.start()
        startup = [name for name, spec in self._specs.items() if spec.trigger == "timer" and spec.run_on_startup]
        if startup or timer_interval_seconds:
            self._timer_thread = threading.Thread(target=self._run_timers, args=(startup, timer_interval_seconds),
                                                  name="timers", daemon=True)
            self._timer_thread.start()
        logger.info("local Functions host started at %s with %d function(s)", self.base_url, len(self._specs))
        return self

    def stop(self) -> None:
        """Stop taking work, let running invocations finish, and join every thread."""
        if not self._running:
            return
        self._stopping.set()
        self._http.stop()
        for listener in self._listeners:
            listener.stop()
        if self._timer_thread is not None:
            self._timer_thread.join()
            self._timer_thread = None
        self._running = False
        logger.info("local Functions host stopped")

    def __enter__(self) -> LocalFunctionsHost:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- observing --------------------------------------------------------------------------------------------

    def invocations(self, function_name: str | None = None) -> list[Invocation]:
        """Invocations so far, oldest first, optionally of one function."""
        with self._state:
            return [i for i in self._invocations if function_name in (None, i.function_name)]

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Return once no invocation is running and every trigger queue is empty (counting messages that are
        invisible, e.g. waiting out a visibilityTimeout); raise TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            with self._state:
                started, busy = self._started_count, self._in_flight
            counts = {listener.queue: listener_count for listener in self._listeners
                      if (listener_count := self._queue_count(listener))}
            if busy == 0 and not counts:
                with self._state:  # nothing started while the queues were read
                    if self._started_count == started and self._in_flight == 0:
                        return
            for listener in self._listeners:
                if listener.queue in counts:
                    listener.wake()
            if time.monotonic() >= deadline:
                raise TimeoutError(f"not idle after {timeout}s: {busy} invocation(s) running, "
                                   f"messages waiting {counts}")
            time.sleep(0.05)

    # -- invoking ---------------------------------------------------------------------------------------------

    def run_timer(self, function_name: str, past_due: bool = False) -> Invocation:
        """Run a timer function now, in this thread, with a TimerRequest(past_due=...)."""
        spec = self._spec(function_name, "timer")
        with self._timer_locks[function_name], self._activity():
            invocation, _ = self._run(spec, TimerRequest(past_due=past_due))
        return invocation

    def _invoke_http(self, spec: FunctionSpec, request: func.HttpRequest) -> tuple[bool, Any]:
        with self._activity():
            invocation, result = self._run(spec, request)
        return invocation.succeeded, result

    def _invoke_queue(self, spec: FunctionSpec, message: func.QueueMessage) -> bool:
        invocation, _ = self._run(spec, message, dequeue_count=message.dequeue_count, message_id=message.id)
        return invocation.succeeded

    def _run(self, spec: FunctionSpec, trigger_value: Any, *, dequeue_count: int | None = None,
             message_id: str | None = None) -> tuple[Invocation, Any]:
        invocation_id = str(uuid.uuid4())
        outs = {output.arg_name: OutValue() for output in spec.outputs}
        arguments: dict[str, Any] = {spec.trigger_arg: trigger_value, **outs}
        if spec.wants_context:
            directory = os.path.dirname(inspect.getfile(spec.user_function))
            arguments["context"] = InvocationContext(invocation_id, spec.name, directory)
        started_at, started = datetime.now(timezone.utc), time.monotonic()
        result, error = None, None
        try:
            if inspect.iscoroutinefunction(spec.user_function):
                result = spec.user_function(**arguments)
            else:
                with self._worker_threads:
                    result = spec.user_function(**arguments)
            if inspect.iscoroutine(result):
                result = asyncio.run(result)
            for output in spec.outputs:  # written only when the function succeeds, as by the host
                self._write_output(output, outs[output.arg_name].get())
        except Exception as exc:  # the function's failure is an outcome to record, as the host does
            error = f"{type(exc).__name__}: {exc}"
            logger.exception("function %s failed (invocation %s)", spec.name, invocation_id)
        invocation = Invocation(spec.name, spec.trigger, "failed" if error else "succeeded", started_at,
                                time.monotonic() - started, invocation_id, dequeue_count, message_id, error)
        with self._state:
            self._invocations.append(invocation)
        logger.info("function %s %s in %.0f ms", spec.name, invocation.outcome, invocation.duration * 1000)
        return invocation, result

    def _write_output(self, output: QueueOutput, value: Any) -> None:
        storage = self._storage_for(output.connection)
        for body in queue_output_messages(output.arg_name, value):
            storage.send(output.queue_name, body)
        for listener in self._listeners:  # like the host's shared queue watcher: no polling delay
            if listener.queue == output.queue_name:
                listener.wake()

    # -- internals --------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _activity(self) -> Iterator[None]:
        with self._state:
            self._in_flight += 1
            self._started_count += 1
        try:
            yield
        finally:
            with self._state:
                self._in_flight -= 1
                self._state.notify_all()

    def _run_timers(self, startup: list[str], interval: float | None) -> None:
        for name in startup:
            self.run_timer(name)
        while interval and not self._stopping.wait(interval):
            for name, spec in self._specs.items():
                if spec.trigger == "timer" and not self._stopping.is_set():
                    self.run_timer(name)

    def _spec(self, name: str, trigger: str) -> FunctionSpec:
        spec = self._specs.get(name)
        if spec is None or spec.trigger != trigger:
            names = sorted(n for n, s in self._specs.items() if s.trigger == trigger)
            raise KeyError(f"no {trigger}-triggered function named {name!r}; there are {names}")
        return spec

    def _storage_for(self, connection: str) -> StorageQueues:
        if connection == HOST_STORAGE:
            connection_string = self._connection_string
        elif connection in self._env:
            connection_string = self._env[connection]
        else:
            raise UnsupportedFunctionError(
                f"connection {connection!r}: the local host needs a setting of that name holding a connection "
                f"string; identity-based connections ({connection}__queueServiceUri) are not supported here")
        if connection_string not in self._storage:
            self._storage[connection_string] = StorageQueues(connection_string, self._options.message_encoding)
        return self._storage[connection_string]

    def _queue_count(self, listener: QueueListener) -> int:
        return self._storage_for(listener.spec.connection or HOST_STORAGE).count(listener.queue)
