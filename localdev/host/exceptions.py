"""Errors of the local Functions host. Each says what the harness cannot run, or what is missing."""

from __future__ import annotations


class LocalHostError(Exception):
    """Base error of the local Functions host."""


class UnsupportedFunctionError(LocalHostError):
    """A function uses a trigger, binding or connection kind this harness does not run."""


class SettingNotFoundError(LocalHostError):
    """A `%SETTING%` expression in a trigger or binding property names a setting that is not defined."""


class AppAlreadyIndexedError(LocalHostError):
    """`get_functions()` was already called on this FunctionApp object; azure-functions allows it only once."""


class InvalidScheduleError(LocalHostError):
    """A timer trigger's schedule is not an NCRONTAB expression the Functions host accepts."""
