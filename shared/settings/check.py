"""Every problem with a set of settings, each named by its environment name, for load_settings and the doctor.

`check_settings()` returns the problems with the best settings object it could build (bad values replaced
by their defaults), so `python -m shared doctor` can inspect a half-filled configuration.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from typing import Any

from pydantic import AliasChoices, ValidationError

from shared.settings.model import Settings, env_name, is_secret
from shared.settings.problems import FEATURES, InvalidSettings, SettingProblem
from shared.settings.source import reading
from shared.settings.values import KEY_VAULT_REFERENCE_FIX, KEY_VAULT_REFERENCE_PREFIX


def check_settings(
    env: Mapping[str, str] | None = None, *, require: Collection[str] = FEATURES
) -> tuple[Settings, list[SettingProblem]]:
    """The settings from `env` (default: os.environ) and every problem with them.

    The settings object is always built: a bad value is replaced by its default (and listed as a problem),
    so a half-filled configuration can still be inspected. `require` picks the features whose missing
    settings count as problems.
    """
    env = dict(os.environ if env is None else env)
    problems: list[SettingProblem] = []
    bad_fields: set[str] = set()
    with reading(env):
        try:
            settings = Settings()
        except ValidationError as exc:
            for err in exc.errors():
                field, problem = _problem_from_error(err, env)
                bad_fields.add(field)
                problems.append(problem)
            known = _names_by_lower()
            with reading({k: v for k, v in env.items() if known.get(k.lower()) not in bad_fields}):
                try:
                    settings = Settings()
                except ValidationError:  # pragma: no cover - each remaining value passed on its own above
                    settings = Settings.model_construct()
    # A reference in a setting the agent does not read is reported, but does not stop the agent.
    known = _names_by_lower()
    problems += [
        SettingProblem(key, f"unresolved Key Vault reference {value.strip()}: {KEY_VAULT_REFERENCE_FIX}", fatal=False)
        for key, value in sorted(env.items())
        if key.lower() not in known and isinstance(value, str) and value.strip().startswith(KEY_VAULT_REFERENCE_PREFIX)
    ]
    problems += _alias_conflicts(env)
    problems += [p for p in settings.problems(require) if not _already_reported(p, problems)]
    return settings, problems


def _names_by_lower() -> dict[str, str]:
    """Every accepted environment name (lower case) -> the field it sets."""
    out: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        out[name.lower()] = name
        if isinstance(field.validation_alias, AliasChoices):
            out.update({str(choice).lower(): name for choice in field.validation_alias.choices})
    return out


def _problem_from_error(err: Any, env: Mapping[str, str]) -> tuple[str, SettingProblem]:
    fields = _names_by_lower()
    loc = list(err["loc"])
    field = fields.get(str(loc[0]).lower(), str(loc[0])) if loc else "settings"
    setting = _name_given(field, env) if field in Settings.model_fields else str(loc[0]).upper()
    detail = "".join(f"[{p}]" for p in loc[1:])
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] not in ("value_error",) and field in Settings.model_fields and not is_secret(field):
        given = err.get("input")
        if isinstance(given, str):
            message += f" (got {given[:60]!r})"
    return field, SettingProblem(setting + detail, message)


def _name_given(field: str, env: Mapping[str, str]) -> str:
    """The name the user set a field by (an alias such as DATABRICKS_WORKSPACE_URL), else its documented name."""
    choices = Settings.model_fields[field].validation_alias
    if isinstance(choices, AliasChoices):
        given = {k.lower(): k for k, v in env.items() if v != ""}
        for choice in choices.choices:
            if str(choice).lower() in given:
                return str(choice)
    return env_name(field)


def _alias_conflicts(env: Mapping[str, str]) -> list[SettingProblem]:
    """A setting given under two of its names with different values: which one wins would be a surprise."""
    given = {k.lower(): (k, v.strip()) for k, v in env.items() if isinstance(v, str) and v.strip()}
    problems = []
    for field in Settings.model_fields.values():
        if not isinstance(field.validation_alias, AliasChoices):
            continue
        named = [given[str(c).lower()] for c in field.validation_alias.choices if str(c).lower() in given]
        if len({value for _, value in named}) > 1:
            names = " and ".join(name for name, _ in named)
            problems.append(SettingProblem(named[0][0], f"{names} are both set, to different values: keep one"))
    return problems


# A missing setting is not reported when it, or the setting that stands in for it, was rejected already.
_STANDS_IN_FOR = {
    "databricks_host": ("databricks_workspaces", "databricks_workspace_url"),
    "azurewebjobsstorage": ("azurewebjobsstorage__accountname", "azurewebjobsstorage__queueserviceuri",
                            "azurewebjobsstorage__tableserviceuri"),
}


def _already_reported(problem: SettingProblem, problems: list[SettingProblem]) -> bool:
    name = problem.setting.lower()
    related = {name, *_STANDS_IN_FOR.get(name, ())}
    return any(p.setting.split("[")[0].lower() in related for p in problems)


def load_settings(env: Mapping[str, str] | None = None, *, require: Collection[str] = FEATURES) -> Settings:
    """Build the settings from `env` (default: os.environ); raise ConfigError (InvalidSettings) listing every problem.

    Secret values held in the settings are registered with the log redaction.
    """
    # Imported here, not at the top: shared.settings.check imports this module (for Settings and env_name).
    from shared.settings.check import check_settings

    settings, problems = check_settings(env, require=require)
    fatal = [p for p in problems if p.fatal]
    if fatal:
        raise InvalidSettings(fatal)
    from shared.redaction import register_secret

    for value in settings.secret_values():
        register_secret(value)
    return settings
