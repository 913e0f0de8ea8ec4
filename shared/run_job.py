"""run_job tasks: one failure, one decision, one action, for a parent run and the child run it started.

A run_job task starts a run of another job (the child, `trigger: RUN_JOB_TASK`, `trigger_info.run_id` = the
parent's run_job task run; databricks-sdk-py service/jobs.py `TriggerInfo`). When the child fails, both runs
fail: deciding on both would act twice. The decision is made on the parent:
- repairing the parent reruns its run_job task, which starts a new child run, and then the parent's own
  downstream tasks, so the whole workflow finishes; repairing the child would leave the parent failed and its
  downstream tasks skipped, and a later repair of the parent would run the child's work a third time;
- the parent's diagnosis reads the child's failed tasks (get-output of the run_job task → run_job_output.run_id),
  so the email names the cause and both runs.
The child is only linked: its event enqueues the parent's (the parent's claim dedupes), and nothing else.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from shared.databricks.api import JobsApi
from shared.databricks.models import Run
from shared.events import FailureEvent
from shared.exceptions import PermanentError

if TYPE_CHECKING:
    from shared.pipeline import PipelineDeps

log = logging.getLogger(__name__)

STATE_KIND = "run_job_child"  # state rows: child run -> parent run, for people and the poller


def parent_job_run(api: JobsApi, task_run_id: int) -> int | None:
    """The job run that holds run_job task run `task_run_id` (runs/get of a task run: `job_run_id`)."""
    try:
        task_run = api.get_run(task_run_id)
    except PermanentError as exc:
        log.warning("run_job task run not readable", extra={"run_id": task_run_id, "error": str(exc)})
        return None
    if task_run.job_run_id is not None and task_run.job_run_id != task_run_id:
        return task_run.job_run_id
    # Some answers give the job run itself (it holds the task): then it is the parent.
    if any(t.run_id == task_run_id for t in task_run.tasks):
        return task_run.run_id
    return None


def link_child_to_parent(child: Run, api: JobsApi, deps: PipelineDeps, event: FailureEvent) -> str:
    """Record which run started `child`, make sure the parent gets decided, and say so (no decision here)."""
    task_run_id = child.started_by_run_job_task
    ws = deps.workspace_key(event.workspace_id)
    parent = parent_job_run(api, task_run_id) if task_run_id is not None else None
    deps.state.put(STATE_KIND, f"{ws}:{child.run_id}", {
        "parent_run_id": parent, "task_run_id": task_run_id, "child_job_id": child.job_id,
    })
    if parent is None:
        # Safe side: never act on a child whose parent may act too. The parent's own failure reaches the agent
        # by its webhook or the poller (it is a failed job run like any other).
        return (f"run {child.run_id} was started by run_job task run {task_run_id}, whose job run could not be "
                "read; the failure is decided on that parent run, never on this child")
    deps.enqueue(FailureEvent(workspace_id=event.workspace_id, run_id=parent, source=event.source), 0)
    return (f"run {child.run_id} was started by a run_job task of run {parent}: the failure is decided there, "
            "once (repairing the parent starts a new child run); this child run is only linked")
