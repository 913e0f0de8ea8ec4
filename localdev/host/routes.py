"""Function route templates (ASP.NET style: `jobs/{id:int}`, `files/{*path}`, `x/{name?}`) as regular expressions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

_PARAMETER = re.compile(r"\{([^{}]+)\}")
_CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "bool": r"(?:true|false)",
    "alpha": r"[A-Za-z]+",
    "guid": r"[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}",
    "double": r"-?\d+(?:\.\d+)?",
    "float": r"-?\d+(?:\.\d+)?",
    "decimal": r"-?\d+(?:\.\d+)?",
}
_SEGMENT = r"[^/]+"


@dataclass(frozen=True)
class Route:
    """A compiled route: `match(path)` gives the route parameters, or None when the path is not this route."""

    template: str
    pattern: re.Pattern[str]
    names: tuple[str, ...]

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.match(path)
        if found is None:
            return None
        return {
            name: unquote(value)
            for name, value in zip(self.names, found.groups(), strict=True)
            if value is not None
        }


def _parameter(spec: str) -> tuple[str, str, bool]:
    """Name, regex and optional flag of one `{...}` parameter (constraints other than the typed ones match a
    segment; defaults `{x=1}` make the parameter optional)."""
    catch_all = spec.startswith("*")
    spec = spec.lstrip("*")
    optional = spec.endswith("?") or "=" in spec
    spec = spec.rstrip("?").split("=", 1)[0]
    name, *constraints = spec.split(":")
    if catch_all:
        return name, r".*", True
    regex = next((_CONSTRAINTS[c.split("(")[0]] for c in constraints if c.split("(")[0] in _CONSTRAINTS), _SEGMENT)
    return name, regex, optional


def compile_route(template: str, prefix: str = "api") -> Route:
    """Compile `template` under `/<prefix>/`. Literals match case-insensitively, as in the Functions host."""
    names: list[str] = []
    pattern = "^" + ("/" + re.escape(prefix) if prefix else "")
    for segment in template.strip("/").split("/"):
        whole = _PARAMETER.fullmatch(segment)
        if whole:
            name, regex, optional = _parameter(whole.group(1))
            names.append(name)
            group = f"(?P<p{len(names) - 1}>{regex})"
            pattern += f"(?:/{group})?" if optional else f"/{group}"
            continue
        part, position = "", 0
        for parameter in _PARAMETER.finditer(segment):
            name, regex, optional = _parameter(parameter.group(1))
            names.append(name)
            part += re.escape(segment[position:parameter.start()]) + f"(?P<p{len(names) - 1}>{regex})"
            part += "?" if optional else ""
            position = parameter.end()
        part += re.escape(segment[position:])
        pattern += "/" + part if part else ""
    return Route(template, re.compile(pattern + "/?$", re.IGNORECASE), tuple(names))
