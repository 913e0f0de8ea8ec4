"""Where `Settings()` reads its values: keyword arguments, then os.environ or the mapping given to `reading()`."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

# A context variable rather than an argument: pydantic-settings builds the source itself, inside Settings().
_ENVIRONMENT: ContextVar[Mapping[str, str] | None] = ContextVar("settings_environment", default=None)


class EnvironmentSource(EnvSettingsSource):
    """The standard environment source, reading the `reading(env)` mapping when one is given."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        env = _ENVIRONMENT.get()
        return parse_env_vars(
            os.environ if env is None else env, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


class EnvironmentSettings(BaseSettings):
    """Settings read from keyword arguments, then the environment (EnvironmentSource); no .env files."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, EnvironmentSource(settings_cls))


@contextmanager
def reading(env: Mapping[str, str]) -> Iterator[None]:
    """Within the block, `Settings()` reads `env` instead of os.environ."""
    token = _ENVIRONMENT.set(env)
    try:
        yield
    finally:
        _ENVIRONMENT.reset(token)
