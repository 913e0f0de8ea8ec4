"""The Jobs API as the rest of the agent sees it: a small interface, so the core is testable without HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from shared.databricks.models import ClusterInfo, Job, Run, RunOutput, RunsPage, RunSummary


class JobsApi(Protocol):
    """What the pipeline, the actions and the poller need from one Databricks workspace."""

    def get_run(self, run_id: int) -> Run:
        """`runs/get?include_history=true`, every page of tasks, job clusters, parameters and history merged."""

    def get_run_output(self, task_run_id: int) -> RunOutput:
        """`runs/get-output` for one task run."""

    def get_cluster(self, cluster_id: str) -> ClusterInfo:
        """`clusters/get`: the cluster's state and termination reason."""

    def get_job(self, job_id: int) -> Job:
        """`jobs/get` (tags, job clusters, notification settings)."""

    def list_runs(
        self, *, start_time_from: int, start_time_to: int | None = None, completed_only: bool = True
    ) -> Iterator[RunSummary]:
        """`runs/list` across every page, newest first; times in epoch ms."""

    def list_runs_page(
        self, *, start_time_from: int, start_time_to: int | None = None, page_token: str | None = None,
        completed_only: bool = True, run_type: str | None = "JOB_RUN",
    ) -> RunsPage:
        """One page of `runs/list` (the poller pages itself, to stop within its time budget)."""

    def repair_run(
        self, run_id: int, *, latest_repair_id: int | None, job_parameters: dict[str, str] | None = None,
        **legacy_parameters: Any,
    ) -> int:
        """`runs/repair` with rerun_all_failed_tasks; returns the repair id. legacy_parameters: notebook_params,
        python_params ... (only passed when the run was started with them)."""

    def run_now(
        self, job_id: int, *, idempotency_token: str, job_parameters: dict[str, str] | None = None,
        **legacy_parameters: Any,
    ) -> int:
        """`run-now` with an idempotency token (<= 64 chars); returns the new run id."""

    def update_job_cluster(self, job_id: int, job_cluster_key: str, new_cluster: dict[str, Any]) -> None:
        """`jobs/update` of one `job_clusters[]` entry (merged by key; the rest of the job is untouched)."""

    def cancel_run(self, run_id: int) -> None:
        """`runs/cancel`."""
