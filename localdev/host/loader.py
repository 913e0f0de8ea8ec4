"""Loading a project the way `func start` does: local.settings.json, host.json, and the app in function_app.py."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.functions.decorators.function_app import FunctionRegister


@dataclass(frozen=True)
class LocalSettings:
    """The parts of local.settings.json the harness uses: `Values` and `Host.LocalHttpPort`."""

    values: dict[str, str] = field(default_factory=dict)
    http_port: int | None = None

    @classmethod
    def read(cls, path: Path) -> LocalSettings:
        """Read the file; a missing file is empty settings."""
        if not path.exists():
            return cls()
        data = json.loads(path.read_text(encoding="utf-8"))
        values = {str(k): "" if v is None else str(v) for k, v in (data.get("Values") or {}).items()}
        port = (data.get("Host") or {}).get("LocalHttpPort")
        return cls(values, int(port) if port is not None else None)

    def apply(self, environ: MutableMapping[str, str]) -> None:
        """Copy `Values` into environ; a variable already set in the environment keeps its value."""
        for name, value in self.values.items():
            environ.setdefault(name, value)


def read_host_json(root: Path) -> dict[str, Any]:
    """host.json of the project (empty when there is none)."""
    path = root / "host.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def load_app(root: Path | str = ".", module: str = "function_app") -> Any:
    """Import `module` from `root` afresh and return the one FunctionApp it defines, as the worker finds it.

    The module is imported again even if it was imported before: each LocalFunctionsHost needs an app object
    whose get_functions() has not been called yet.
    """
    root_dir = str(Path(root).resolve())
    if root_dir not in sys.path:
        sys.path.insert(0, root_dir)
    sys.modules.pop(module, None)
    imported = importlib.import_module(module)
    apps = [value for value in vars(imported).values() if isinstance(value, FunctionRegister)]
    if len(apps) != 1:
        raise ValueError(f"{module}.py must define exactly one FunctionApp, found {len(apps)}")
    return apps[0]
