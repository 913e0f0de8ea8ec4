"""What a task runs on, named for people, with the advice that fits it; as data.

A task's compute follows from its settings (Jobs API 2.2 `Task` / `RunTask`, databricks-sdk-py service/jobs.py):
`sql_task.warehouse_id` and `dbt_task.warehouse_id` run on a SQL warehouse, `pipeline_task.pipeline_id` on the
pipeline's own clusters (DLT / Lakeflow Declarative Pipelines), `run_job_task` in another job's run,
`condition_task` on nothing, `for_each_task` on its nested task's compute, and the rest on `job_cluster_key`,
`new_cluster`, `existing_cluster_id`, or serverless (`environment_key`, or nothing at all).
Only a job cluster can be resized by the agent: it is the job's own, and jobs/update + repair reaches it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ComputeKind:
    """One kind of compute: its words for people, and what to do about a task that needs more of it."""

    name: str
    label: str  # "a SQL warehouse": fits after "runs on"
    advice: str  # the resize blocker's second half: what a person can do instead


KINDS: dict[str, ComputeKind] = {k.name: k for k in (
    ComputeKind("job_cluster", "a job cluster", "the agent resizes job clusters itself"),
    ComputeKind("new_cluster", "a cluster of its own (new_cluster)",
                "give the task's new_cluster a larger node type or more workers in the job's settings, or move "
                "it to a job cluster the agent can resize"),
    ComputeKind("existing_cluster", "an existing all-purpose cluster",
                "that cluster is shared with other work, so the agent leaves it alone: resize it by hand, or run "
                "the task on a job cluster"),
    ComputeKind("serverless", "serverless compute",
                "serverless sizes itself: split the work into smaller pieces, reduce what one task holds in "
                "memory, or run the task on a job cluster"),
    ComputeKind("sql_warehouse", "a SQL warehouse",
                "choose a larger warehouse size (cluster size) or more clusters (scaling) for the warehouse, or "
                "make the query lighter"),
    ComputeKind("dlt_pipeline", "a pipeline's own compute (DLT)",
                "change the compute in the pipeline's settings (node types, autoscaling, or serverless), then "
                "rerun; the job's settings do not size a pipeline"),
    ComputeKind("run_job", "another job (a run_job task)",
                "the compute belongs to the job it runs: see that job's run, and change that job's cluster"),
    ComputeKind("condition", "no compute (a condition task)", "a condition task has no compute to resize"),
)}


def kind_of(task: dict[str, Any]) -> str:
    """The compute kind of one task's settings (a RunTask or a job's Task, as a dict)."""
    if task.get("for_each_task"):
        return kind_of((task["for_each_task"] or {}).get("task") or {})
    if task.get("condition_task"):
        return "condition"
    if task.get("run_job_task"):
        return "run_job"
    if task.get("pipeline_task"):
        return "dlt_pipeline"
    if task.get("sql_task") or (task.get("dbt_task") or {}).get("warehouse_id"):
        return "sql_warehouse"
    if task.get("job_cluster_key"):
        return "job_cluster"
    if task.get("new_cluster"):
        return "new_cluster"
    if task.get("existing_cluster_id"):
        return "existing_cluster"
    return "serverless"


def describe(kind: str | None, detail: str | None = None) -> str:
    """'a SQL warehouse (1a2b3c)' for emails and reasons."""
    known = KINDS.get(kind or "")
    label = known.label if known else (kind or "unknown compute").replace("_", " ")
    return f"{label} ({detail})" if detail else label


def detail_of(task: dict[str, Any]) -> str | None:
    """The id that names the compute: the warehouse, the pipeline, the job run, the cluster key."""
    if task.get("for_each_task"):
        return detail_of((task["for_each_task"] or {}).get("task") or {})
    for block, field, prefix in (("sql_task", "warehouse_id", "warehouse "), ("dbt_task", "warehouse_id", "warehouse "),
                                 ("pipeline_task", "pipeline_id", "pipeline "), ("run_job_task", "job_id", "job ")):
        value = (task.get(block) or {}).get(field)
        if value:
            return f"{prefix}{value}"
    if task.get("job_cluster_key"):
        return f"'{task['job_cluster_key']}'"
    if task.get("existing_cluster_id"):
        return f"cluster {task['existing_cluster_id']}"
    return None


def resize_blocker(kinds: list[tuple[str, str | None]]) -> str:
    """Why the failed tasks cannot be resized by the agent, with what to do instead (one clause per kind)."""
    seen: list[str] = []
    for kind, detail in kinds:
        known = KINDS.get(kind)
        clause = f"the failed task runs on {describe(kind, detail)}: {known.advice if known else 'resize it by hand'}"
        if clause not in seen:
            seen.append(clause)
    return "; ".join(seen) or "the failed task's compute is unknown, so the agent does not resize it"
