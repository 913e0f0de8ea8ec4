"""What the harness needs to know about each function, read from the metadata azure-functions generates
(the same function.json the worker sends the real host), plus the objects passed to user functions."""

from __future__ import annotations

import inspect
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import azure.functions as func
from azure.functions import _abc as functions_abc

from localdev.host.exceptions import InvalidScheduleError, UnsupportedFunctionError
from localdev.host.settings import resolve_settings
from shared.settings.values import ncrontab

HOST_STORAGE = "AzureWebJobsStorage"
_TRIGGERS = {"httpTrigger": "http", "queueTrigger": "queue", "timerTrigger": "timer"}


@dataclass(frozen=True)
class QueueOutput:
    """A queue output binding: the argument the function sets, and the queue it goes to (settings resolved)."""

    arg_name: str
    queue_name: str
    connection: str


@dataclass(frozen=True)
class FunctionSpec:
    """One function as the harness runs it. `trigger` is "http", "queue" or "timer"; trigger properties that
    do not apply are None. Queue names and schedules have their `%SETTING%` expressions resolved."""

    name: str
    trigger: str
    trigger_arg: str
    user_function: Callable[..., Any]
    outputs: tuple[QueueOutput, ...] = ()
    route: str | None = None
    methods: tuple[str, ...] | None = None
    auth_level: str | None = None
    queue_name: str | None = None
    connection: str | None = None
    schedule: str | None = None
    run_on_startup: bool = False
    wants_context: bool = False

    @classmethod
    def from_function(cls, function: Any, env: Mapping[str, str]) -> FunctionSpec:
        """Read a `azure.functions.decorators.function_app.Function` (from `app.get_functions()`)."""
        name = function.get_function_name()
        bindings = json.loads(function.get_function_json())["bindings"]
        triggers = [b for b in bindings if b["type"].endswith("Trigger")]
        if len(triggers) != 1 or triggers[0]["type"] not in _TRIGGERS:
            kinds = [b["type"] for b in triggers]
            raise UnsupportedFunctionError(f"function {name!r}: trigger {kinds} is not run by the local host "
                                           f"(it runs {sorted(_TRIGGERS)})")
        trigger = triggers[0]
        kind = _TRIGGERS[trigger["type"]]
        outputs = []
        for binding in bindings:
            if binding is trigger or (binding["type"] == "http" and binding["name"] == "$return"):
                continue
            if binding["type"] != "queue" or str(binding.get("direction")).upper() != "OUT":
                raise UnsupportedFunctionError(f"function {name!r}: binding {binding['type']!r} "
                                               f"({binding.get('direction')}) is not run by the local host")
            outputs.append(QueueOutput(binding["name"], resolve_settings(binding["queueName"], env),
                                       binding.get("connection") or HOST_STORAGE))
        user_function = function.get_user_function()
        spec = cls(name=name, trigger=kind, trigger_arg=trigger["name"], user_function=user_function,
                   outputs=tuple(outputs),
                   wants_context="context" in inspect.signature(user_function).parameters)
        if kind == "http":
            methods = trigger.get("methods")
            return replace(spec, route=trigger.get("route") or name,
                            methods=tuple(m.upper() for m in methods) if methods else None,
                            auth_level=str(trigger.get("authLevel") or "FUNCTION").upper())
        if kind == "queue":
            return replace(spec, queue_name=resolve_settings(trigger["queueName"], env),
                            connection=trigger.get("connection") or HOST_STORAGE)
        schedule = resolve_settings(trigger["schedule"], env)
        try:  # the host refuses to index a timer whose schedule it cannot read; so does the harness
            ncrontab(schedule)
        except ValueError as exc:
            raise InvalidScheduleError(f"function {name}: schedule {schedule!r}: {exc}") from exc
        return replace(spec, schedule=schedule, run_on_startup=bool(trigger.get("runOnStartup", False)))


class OutValue(func.Out):
    """The `func.Out` passed for an output binding: holds what the function sets."""

    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


class InvocationContext(functions_abc.Context):
    """The `context` argument, for functions that declare one (as the Python worker passes it)."""

    def __init__(self, invocation_id: str, function_name: str, function_directory: str) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._function_directory = function_directory
        self._local = threading.local()
        self._local.invocation_id = invocation_id

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> threading.local:
        return self._local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None


def queue_output_messages(arg_name: str, value: Any) -> list[bytes]:
    """The message bodies an output binding's value stands for: str, bytes, a QueueMessage, or a list of them,
    as the worker's QueueMessageOutConverter accepts. Anything else is an error of the function."""

    def one(item: Any) -> bytes:
        if isinstance(item, str):
            return item.encode("utf-8")
        if isinstance(item, (bytes, bytearray)):
            return bytes(item)
        if isinstance(item, functions_abc.QueueMessage):
            return item.get_body()
        raise TypeError(f"queue output {arg_name!r} accepts str, bytes, QueueMessage or a list of them, "
                        f"not {type(item).__name__}")

    if value is None:
        return []
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes, bytearray, Mapping)):
        return [one(item) for item in value]
    return [one(value)]
