"""The record of one decision: what failed, what the agent concluded and why, what it did, and how it ended.

One record per failed job run (per repair of it). It is the row in Table Storage, the input of every email,
and the raw material of the learning loop, so it carries the evidence and never a secret.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from shared.taxonomy import Action, Category

# "held": decided (intent on record), its rerun waiting for its incident's canary (shared/incidents).
Status = Literal["claimed", "decided", "acted", "done", "failed", "deferred", "held"]
Outcome = Literal["pending", "succeeded", "failed", "not_applicable"]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class FailedTask(BaseModel):
    """One task that failed on its own (not skipped because of another)."""

    task_key: str
    run_id: int
    result_state: str | None = None
    error: str | None = Field(default=None, description="The short `error` of runs/get-output, trimmed.")
    run_page_url: str | None = None
    compute: str | None = Field(default=None, description="What it runs on: shared.databricks.compute.KINDS "
                                "(job_cluster, sql_warehouse, dlt_pipeline, serverless, run_job ...)")
    job_cluster_key: str | None = None
    category: Category | None = None
    compute_detail: str | None = Field(default=None, description="The warehouse, pipeline, job or cluster it names.")
    linked_run_id: int | None = Field(default=None, description="The run a run_job task started (where it failed).")
    linked_run_url: str | None = None
    iterations_failed: int | None = Field(default=None, description="A for_each task's failed iterations.")


class FieldChange(BaseModel):
    """One field of a job cluster's spec the agent changed: the inverse patch of a resize is made of these.

    `field` is a path: node_type_id, driver_node_type_id, num_workers, autoscale.max_workers,
    spark_conf.<key>. Values are None where the field was absent. Only fields whose values are not secrets
    are ever changed (resize.py refuses sensitive spark_conf keys), so both values are kept in the clear.
    """

    field: str
    before: Any = None
    after: Any = None


class ResizeChange(BaseModel):
    """A job cluster made one step larger: exactly which fields changed, so the change can be reverted.

    `before`/`after` are whole specs for people (masked where they hold a secret: never written back);
    `changes` is the inverse patch the revert applies to the live spec, field by field, only where
    Databricks still shows the agent's value; `after_hash` fingerprints the whole spec the agent wrote.
    """

    job_cluster_key: str
    before: dict[str, Any]
    after: dict[str, Any]
    changes: list[FieldChange] = Field(default_factory=list)
    after_hash: str | None = None
    summary: str = Field(description="What changed, for people: 'node Standard_DS3_v2 → Standard_DS4_v2; workers 4 → 8'")
    reverted: bool = False
    kept: Literal["setting", "changed"] | None = Field(
        default=None,
        description="Why it was not reverted once its rerun ended: 'setting' (RESIZE_REVERT=false) or 'changed' "
        "(someone edited the job cluster after the resize, so the agent left it alone).",
    )


class Intent(BaseModel):
    """What the agent is about to do in Databricks, on record before it is sent.

    After an ambiguous answer, a redelivery or a restart, the action is recognised by reading Databricks back:
    a REPAIR item after `base_repair_count` in the run's repair history, the job cluster showing `changes`'
    `after` values; run-now carries `token`, which Databricks answers with the run it already started.
    """

    kind: Literal["repair", "resize_repair"]
    run_id: int
    job_id: int | None = None
    base_repair_count: int = 0
    base_latest_repair_id: int | None = None
    resize: ResizeChange | None = None
    step: list[FieldChange] = Field(
        default_factory=list,
        description="This resize's own patch (from the size the decision saw); `resize.changes` reaches back to "
        "the chain's original size for the revert.")
    token: str | None = None
    recorded_at: datetime | None = None


class Analysis(BaseModel):
    """The human part of a diagnosis, from the LLM when one was consulted."""

    root_cause: str | None = None
    suggested_fix: str | None = None
    severity: str | None = None
    source: Literal["rules", "llm", "llm_cache", "rules_fallback"] = "rules"
    fallback_reason: str | None = None
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    # What the LLM said (untrusted: recorded for audit and learning) and what the guard rails did with it.
    llm_category: str | None = Field(default=None, description="The LLM's category, whether or not it was used.")
    llm_confidence: float | None = None
    suggested_parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="The LLM's cluster suggestion after clamping to the resize bounds (node_type_id, num_workers, "
        "autoscale_max_workers, spark_conf); empty unless the action is RETRY_WITH_NEW_PARAMS.",
    )
    guard_notes: list[str] = Field(default_factory=list, description="What the guard rails refused or clamped, and why.")
    prompt_version: str | None = None
    llm_outcome: Literal["not_asked", "explained", "agreed", "override", "refused", "failed", "budget_spent"] = Field(
        default="not_asked", description="What the LLM step did to the decision (typed, for reports).")


class DecisionRecord(BaseModel):
    """Everything about one decision. `key` is the idempotency key: workspace, job run and repair count."""

    model_config = ConfigDict(use_enum_values=False)

    key: str
    workspace_id: str
    job_id: int | None = None
    job_name: str | None = None
    run_id: int
    repair_count: int = 0
    chain_id: str = Field(description="The first run of this chain of attempts (workspace:run).")
    attempt: int = Field(default=1, description="1 for the first failure of a chain, +1 per agent rerun.")
    max_attempts: int = 3
    run_page_url: str | None = None
    failed_tasks: list[FailedTask] = Field(default_factory=list)

    category: Category = Category.UNKNOWN
    proposed_action: Action | None = Field(default=None, description="The classifier's first-attempt action.")
    action: Action | None = Field(default=None, description="What the agent decided, after budget and guard rails.")
    confidence: float = 0.0
    reason: str = ""
    reason_code: str | None = Field(default=None, description="shared.decide.ReasonCode of the decision: "
                                    "rules_sure, below_bar, llm_override, llm_refused, budget_spent, ...")
    evidence: list[str] = Field(default_factory=list)
    excerpt: str = ""
    fingerprint: str = ""
    rule_id: str | None = None
    analysis: Analysis = Field(default_factory=Analysis)

    mode: Literal["act", "observe"] = "act"
    status: Status = "claimed"
    intent: Intent | None = Field(default=None, description="The action, recorded before it is sent.")
    done: str = Field(default="", description="What was done, for people: 'repaired run 123 (repair 456)'.")
    repair_id: int | None = None
    new_run_id: int | None = None
    resize: ResizeChange | None = None
    outcome: Outcome = "not_applicable"
    # The learning loop's reading of the outcome (shared/learning/outcomes.py): success confirms the decision,
    # the same fingerprint again refutes it; only these labels feed accuracy, reports and fine-tuning.
    outcome_verdict: Literal["confirmed", "refuted", "inconclusive", "awaiting"] | None = None
    outcome_seen_at: datetime | None = Field(default=None, description="When the agent saw its rerun end.")
    outcome_note: str = Field(default="", description="The outcome for people: 'rerun succeeded on ...'.")
    worked_size: str | None = Field(default=None, description="The cluster size a resized rerun succeeded on.")
    rerun_failure_key: str | None = Field(default=None, description="The decision on the rerun's own failure.")
    error: str | None = Field(default=None, description="Why processing failed, when it did.")
    notifications: list[str] = Field(default_factory=list, description="Ids of notifications sent for it.")
    dropped_recipients: list[str] = Field(
        default_factory=list, description="Addresses from the job outside EMAIL_ALLOWED_DOMAINS, not written to.")

    # Incidents (shared/incidents): which shared cause this failure has, the incident it joined, whether its own
    # email was folded into the incident's notification, and when its rerun was held and released.
    incident_key: str | None = Field(default=None, description="The grouping key of its cause (incidents/key.py).")
    incident_id: str | None = Field(default=None, description="The incident it is a member of.")
    folded_into: str | None = Field(default=None, description="Its own email was folded into this incident's.")
    held_since: datetime | None = Field(default=None, description="Its rerun was held by its incident from then.")
    released_at: datetime | None = Field(default=None, description="Its held rerun was released then.")
    canary: bool = Field(default=False, description="Its rerun was released as its incident's canary.")
    notify_after: datetime | None = Field(
        default=None, description="Its email waits until then, to be folded should its cause become an incident.")

    agent_enabled: bool = Field(default=True, description="False when a job tag turned the agent off.")
    source: str = "webhook"
    received_at: datetime = Field(default_factory=utcnow)
    decided_at: datetime | None = None
    finished_at: datetime | None = None
    claim_owner: str | None = None
    claimed_at: datetime | None = Field(default=None, description="Start of the current claim's lease.")

    # The version this copy was read at, and what it looked like then: a save is conditional on the first,
    # and on a conflict re-applies only what changed since the second (store.py).
    _etag: Any = PrivateAttr(default=None)
    _read_as: dict[str, Any] | None = PrivateAttr(default=None)

    @property
    def is_retry(self) -> bool:
        return self.action in (Action.RETRY, Action.RETRY_WITH_NEW_PARAMS)
