"""local.settings.json, the file `func start` reads: its Values become app settings for local runs.

Every local entry point reads it the same way (`python -m shared ...`, `make run`, the doctor): a variable
already set in the environment keeps its value, as with the Functions host.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from shared.exceptions import ConfigError

LOCAL_SETTINGS = "local.settings.json"


def read_local_settings(path: str | Path) -> dict[str, str]:
    """The Values of a local.settings.json (ConfigError when it is not one)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("Values", {}), dict):
        raise ConfigError(f"{path}: not a local.settings.json (no Values object)")
    if data.get("IsEncrypted"):
        raise ConfigError(f"{path}: IsEncrypted is true; decrypt it first (func settings decrypt)")
    return {str(k): "" if v is None else str(v) for k, v in data.get("Values", {}).items()}


def local_settings_path(given: str | Path | None, root: Path | None = None) -> Path | None:
    """The file to read: the one given, else ./local.settings.json when there is one, else None."""
    if given:
        return Path(given)
    default = (root or Path.cwd()) / LOCAL_SETTINGS
    return default if default.is_file() else None


def apply_local_settings(values: Mapping[str, str], environ: MutableMapping[str, str]) -> None:
    """Copy the file's Values into `environ`; a variable already set keeps its value (as with the host)."""
    for name, value in values.items():
        environ.setdefault(name, value)
