"""LLM analysis: the rules decide, the model explains what they miss (k8sgpt's split).

The logic lives in shared.llm.analyzer (Analyzer, build_analyzer, the CLI seam); prompt.py, guard.py,
schema.py, cache.py, budget.py and client.py are its parts. Importing this package loads none of them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Analyzer", "build_analyzer", "build_analyzer_from_env", "cli_classifier", "failure_prompt"]


def __getattr__(name: str) -> Any:
    # The names callers have always imported from shared.llm, resolved on first use (no import at package load,
    # so nothing the analyzer imports can ever import this package back in a circle).
    if name in __all__:
        from shared.llm import analyzer

        return getattr(analyzer, name)
    raise AttributeError(f"module 'shared.llm' has no attribute {name!r}")
