"""What the email says about a failed task's shape: what it runs on, the run a run_job task started, a for_each
task's failed iterations (the templates show them under the task's line)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.databricks.compute import describe
from shared.decision import FailedTask


def task_shape(task: FailedTask, redact: Callable[[str], str], safe_url: Callable[[str | None], Any]) -> dict[str, Any]:
    """The task's compute (named for people), linked run and failed iterations, already redacted."""
    return {
        "compute": redact(describe(task.compute, task.compute_detail)) if task.compute else "",
        "linked_run": task.linked_run_id,
        "linked_url": safe_url(task.linked_run_url),
        "iterations_failed": task.iterations_failed or 0,
    }
