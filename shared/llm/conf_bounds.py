"""The value bounds of each spark_conf key an LLM may suggest (spark_conf_bounds.toml), and the check."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

BOUNDS_FILE = Path(__file__).with_name("spark_conf_bounds.toml")
MAX_VALUE_CHARS = 32
_INT = re.compile(r"[+-]?\d{1,19}")
_BYTES = re.compile(r"(\d{1,19})\s?([kmgtp]?)(?:i?b)?", re.I)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


@dataclass(frozen=True)
class KeyBounds:
    """What one spark_conf key accepts."""

    name: str
    kind: str  # int | bytes | enum
    min: int = 0
    max: int = 0
    values: tuple[str, ...] = ()
    also: tuple[str, ...] = ()


@lru_cache(maxsize=1)
def load_bounds(path: Path = BOUNDS_FILE) -> dict[str, KeyBounds]:
    """Every key's bounds; raises ValueError naming a malformed entry."""
    out: dict[str, KeyBounds] = {}
    for entry in tomllib.loads(path.read_text(encoding="utf-8")).get("key", []):
        kind = entry.get("kind")
        if kind not in ("int", "bytes", "enum"):
            raise ValueError(f"{path.name}: {entry.get('name')}: kind must be int, bytes or enum")
        bounds = KeyBounds(str(entry["name"]), kind, int(entry.get("min", 0)), int(entry.get("max", 0)),
                           tuple(str(v).lower() for v in entry.get("values", ())),
                           tuple(str(v).lower() for v in entry.get("also", ())))
        if kind == "enum" and not bounds.values:
            raise ValueError(f"{path.name}: {bounds.name}: an enum needs values")
        if kind != "enum" and bounds.min > bounds.max:
            raise ValueError(f"{path.name}: {bounds.name}: min > max")
        out[bounds.name] = bounds
    return out


def check_value(key: str, value: str) -> tuple[str, str | None]:
    """(the value to use, None) when `value` is inside `key`'s bounds, else ("", why not)."""
    bounds = load_bounds().get(key)
    if bounds is None:
        return "", "no value bounds are known for this key (shared/llm/spark_conf_bounds.toml)"
    value = value.strip()
    if not value or len(value) > MAX_VALUE_CHARS:
        return "", "the value is empty or too long"
    lowered = value.lower()
    if lowered in bounds.also:
        return lowered, None
    if bounds.kind == "enum":
        if lowered in bounds.values:
            return lowered, None
        return "", f"{value!r} is not one of {', '.join(bounds.values)}"
    number = _number(value, bounds.kind)
    if number is None:
        return "", f"{value!r} is not {'an integer' if bounds.kind == 'int' else 'a size such as 64m'}"
    if not bounds.min <= number <= bounds.max:
        return "", f"{value!r} is outside {bounds.min}..{bounds.max}"
    return value if bounds.kind == "bytes" else str(number), None


def _number(value: str, kind: str) -> int | None:
    if kind == "int":
        return int(value) if _INT.fullmatch(value) else None
    m = _BYTES.fullmatch(value)
    return int(m.group(1)) * _UNITS[m.group(2).lower()] if m else None
