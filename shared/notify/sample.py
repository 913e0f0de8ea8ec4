"""A realistic decision to render and send when checking the email setup (`python -m shared email-test`).

The error text carries <, & and a <script> tag on purpose: whatever a user printed ends up in an email, and
the check shows it arrives as text, not as markup.
"""

from __future__ import annotations

from datetime import datetime, timezone

from shared.decision import Analysis, DecisionRecord, FailedTask, ResizeChange
from shared.taxonomy import Action, Category

RUN_URL = "https://adb-1234567890123456.7.azuredatabricks.net/?o=1234567890123456#job/42/run/911"

PERMISSION_ERROR = (
    "[PERMISSION_DENIED] User does not have SELECT on Table 'main.sales'. SQLSTATE: 42501\n"
    "org.apache.spark.sql.AnalysisException: [PERMISSION_DENIED] User does not have SELECT on Table "
    "'main.sales'. SQLSTATE: 42501\n"
    "\tat com.databricks.sql.acl.CheckPermissions$.checkPermission(CheckPermissions.scala:212)\n"
    "\tat com.databricks.sql.acl.CheckPermissions$.$anonfun$apply$1(CheckPermissions.scala:98)\n"
    "stdout: rows where amount < 0 & region = 'EMEA': 17\n"
    "stdout: <script>alert('printed by a notebook')</script>"
)

OOM_ERROR = (
    "java.lang.OutOfMemoryError: Java heap space\n"
    "\tat org.apache.spark.sql.execution.joins.UnsafeHashedRelation$.apply(HashedRelation.scala:432)\n"
    "\tat org.apache.spark.sql.execution.exchange.BroadcastExchangeExec.$anonfun$relationFuture$1"
    "(BroadcastExchangeExec.scala:141)"
)


def sample_record(
    action: Action = Action.SEND_EMAIL, *, mode: str = "act", key_suffix: str = "sample"
) -> DecisionRecord:
    """A decision about a failed nightly ETL run: a permission error, or an out-of-memory one for retries."""
    when = datetime(2025, 11, 24, 9, 41, tzinfo=timezone.utc)
    resource = action in (Action.RETRY, Action.RETRY_WITH_NEW_PARAMS)
    escalated = action is Action.ESCALATE
    error = OOM_ERROR if (resource or escalated) else PERMISSION_ERROR
    category = Category.RESOURCE if (resource or escalated) else Category.PERMISSION
    record = DecisionRecord(
        key=f"default:911:0:{key_suffix}",
        workspace_id="default",
        job_id=42,
        job_name="nightly_etl",
        run_id=911,
        chain_id=f"default:911:{key_suffix}",
        attempt=4 if escalated else (1 if resource else 1),
        max_attempts=4,
        run_page_url=RUN_URL,
        failed_tasks=[
            FailedTask(
                task_key="load_silver",
                run_id=912,
                result_state="FAILED",
                error=error.splitlines()[0],
                run_page_url=RUN_URL.replace("run/911", "run/912"),
                compute="job_cluster",
                job_cluster_key="etl_cluster",
                category=category,
            )
        ],
        category=category,
        proposed_action=action,
        action=action,
        confidence=0.97,
        evidence=[
            "error class [PERMISSION_DENIED] (SQLSTATE 42501)" if not resource and not escalated
            else "java.lang.OutOfMemoryError: Java heap space",
            "task load_silver: result_state FAILED, termination RUN_EXECUTION_ERROR",
        ],
        excerpt=error,
        fingerprint="3f9c2b7e5d1a4c08b6e2f4a9d7c1e5b3",
        rule_id="permission.uc_privilege" if not resource else "resource.java_oom",
        mode=mode,  # type: ignore[arg-type]
        received_at=when,
        decided_at=when,
    )
    if resource or escalated:
        record.analysis = Analysis(
            root_cause="The broadcast join in load_silver builds a hash table larger than the driver's heap: "
            "the dimension table grew past the broadcast threshold's intent.",
            suggested_fix="Run on a larger node type, or set spark.sql.autoBroadcastJoinThreshold lower so Spark "
            "uses a sort-merge join for this table.",
            source="llm",
        )
    else:
        record.analysis = Analysis(
            root_cause="The job's run-as principal etl-sp lost SELECT on main.sales; the grant was probably removed "
            "when the table was recreated on Friday.",
            suggested_fix="GRANT SELECT ON TABLE main.sales TO `etl-sp`; then repair the run.",
            source="llm",
        )
    if escalated:
        record.reason = "retry budget spent: 3 of 3 reruns used and it still fails (resource)"
        record.done = "escalated to the on-call list; nothing changed in Databricks"
    elif action is Action.RETRY_WITH_NEW_PARAMS:
        summary = "node Standard_DS3_v2 → Standard_DS4_v2; workers 4 → 8"
        record.reason = "resource failure is worth a rerun on a larger cluster (rerun 1 of 3)"
        record.resize = ResizeChange(
            job_cluster_key="etl_cluster",
            before={"node_type_id": "Standard_DS3_v2", "num_workers": 4},
            after={"node_type_id": "Standard_DS4_v2", "num_workers": 8},
            summary=summary,
        )
        record.done = (
            f"observe mode: would have resized job cluster 'etl_cluster' ({summary}) and repaired run 911"
            if mode == "observe"
            else f"resized job cluster 'etl_cluster' ({summary}); repaired run 911 (repair 5501)"
        )
    elif action is Action.RETRY:
        record.reason = "resource failure is worth a rerun (rerun 1 of 3)"
        record.done = (
            "observe mode: would have repaired run 911" if mode == "observe" else "repaired run 911 (repair 5501)"
        )
    else:
        record.reason = "permission failure needs a human: a retry cannot fix it"
        record.done = "emailed the job's owners; nothing changed in Databricks"
    return record


def sample_outcome_record(outcome: str = "succeeded", *, kept: str | None = None,
                          key_suffix: str = "sample") -> DecisionRecord:
    """The resized rerun of the out-of-memory sample, ended: reverted by default, or kept ('setting', 'changed')."""
    record = sample_record(Action.RETRY_WITH_NEW_PARAMS, key_suffix=key_suffix)
    record.outcome = outcome  # type: ignore[assignment]
    assert record.resize is not None
    if kept is None and outcome == "succeeded":
        record.resize.reverted = True
        record.done += "; reverted job cluster 'etl_cluster' to its original size"
    record.resize.kept = kept  # type: ignore[assignment]
    return record
