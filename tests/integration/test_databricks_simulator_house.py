"""The simulator's modules import each other without a circle (TYPE_CHECKING imports included) and stay small."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "localdev" / "databricks_sim"
PREFIX = "localdev.databricks_sim."


def imports() -> dict[str, set[str]]:
    graph = {}
    for path in PACKAGE.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PREFIX):
                found.add(node.module[len(PREFIX):])
            elif isinstance(node, ast.Import):
                found |= {a.name[len(PREFIX):] for a in node.names if a.name.startswith(PREFIX)}
        graph[path.stem] = found
    return graph


def test_no_module_of_the_simulator_imports_one_that_imports_it_back():
    graph = imports()
    circles = []

    def visit(module: str, trail: list[str]) -> None:
        for target in sorted(graph.get(module, ())):
            if target in trail:
                circles.append(trail[trail.index(target):] + [target])
            else:
                visit(target, trail + [target])

    for start in graph:
        visit(start, [start])
    assert circles == []


def test_every_simulator_module_stays_under_400_lines_scenario_data_aside():
    sizes = {p.name: len(p.read_text().splitlines()) for p in PACKAGE.glob("*.py") if p.name != "scenarios.py"}

    assert {name: n for name, n in sizes.items() if n > 400} == {}
