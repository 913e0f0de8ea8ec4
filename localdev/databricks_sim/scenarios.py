"""The demo workspace: ten realistic failing jobs, one per kind of failure the agent must tell apart, and on
request two more of the shapes real workspaces have (a for_each job, a run_job job whose child fails).

Error texts follow the shapes Databricks and Spark produce (../shared/reference/databricks.md §7); names,
hosts, tables and ids are made up.
"""

from __future__ import annotations

from typing import Any

from localdev.databricks_sim.model import ForEachFailure, TaskFailure, succeed_if_resized
from localdev.databricks_sim.simulator import DatabricksSimulator

AGENT_WEBHOOK_DESTINATION = "5b1f7c1e-3a0d-4c39-9a53-0d6f2c7e4b11"
SPARK_VERSION = "15.4.x-scala2.12"
STANDARD_CLUSTER = {
    "spark_version": SPARK_VERSION,
    "node_type_id": "Standard_DS3_v2",
    "driver_node_type_id": "Standard_DS3_v2",
    "autoscale": {"min_workers": 2, "max_workers": 4},
    "azure_attributes": {"availability": "ON_DEMAND_AZURE", "first_on_demand": 1, "spot_bid_max_price": -1},
    "spark_conf": {"spark.sql.shuffle.partitions": "200"},
    "data_security_mode": "SINGLE_USER",
    "runtime_engine": "STANDARD",
    "custom_tags": {"cost_center": "data-platform"},
}

OOM_ERROR = (
    "org.apache.spark.SparkException: Job aborted due to stage failure: Task 57 in stage 23.0 failed 4 times, "
    "most recent failure: Lost task 57.3 in stage 23.0 (TID 1843) (10.139.64.14 executor 2): "
    "java.lang.OutOfMemoryError: Java heap space"
)
OOM_TRACE = """---------------------------------------------------------------------------
Py4JJavaError                             Traceback (most recent call last)
File <command-2847561938472615>, line 14
     11 daily = (orders.join(line_items, "order_id")
     12              .groupBy("store_id", "sku", "order_date")
     13              .agg(F.sum("amount").alias("revenue")))
---> 14 daily.write.mode("overwrite").saveAsTable("main.sales.daily_revenue")

File /databricks/spark/python/pyspark/errors/exceptions/captured.py:224, in capture_sql_exception.<locals>.deco(*a, **kw)
    222 converted = convert_exception(e.java_exception)
--> 224     return f(*a, **kw)

Py4JJavaError: An error occurred while calling o482.saveAsTable.
: org.apache.spark.SparkException: Job aborted due to stage failure: Task 57 in stage 23.0 failed 4 times, most recent failure: Lost task 57.3 in stage 23.0 (TID 1843) (10.139.64.14 executor 2): java.lang.OutOfMemoryError: Java heap space
	at java.base/java.util.Arrays.copyOf(Arrays.java:3537)
	at org.apache.spark.unsafe.map.BytesToBytesMap.growAndRehash(BytesToBytesMap.java:914)
	at org.apache.spark.sql.execution.UnsafeFixedWidthAggregationMap.getAggregationBufferFromUnsafeRow(UnsafeFixedWidthAggregationMap.java:129)
Caused by: org.apache.spark.memory.SparkOutOfMemoryError: Unable to acquire 268435456 bytes of memory, got 0
	at org.apache.spark.memory.MemoryConsumer.throwOom(MemoryConsumer.java:157)
	at org.apache.spark.memory.MemoryConsumer.allocateArray(MemoryConsumer.java:98)
	at org.apache.spark.unsafe.map.BytesToBytesMap.allocate(BytesToBytesMap.java:832)"""

READ_TIMEOUT_ERROR = "com.microsoft.sqlserver.jdbc.SQLServerException: Read timed out"
READ_TIMEOUT_TRACE = """Py4JJavaError: An error occurred while calling o211.load.
: com.microsoft.sqlserver.jdbc.SQLServerException: Read timed out
	at com.microsoft.sqlserver.jdbc.SQLServerConnection.terminate(SQLServerConnection.java:4026)
	at com.microsoft.sqlserver.jdbc.TDSChannel.read(IOBuffer.java:2119)
	at org.apache.spark.sql.execution.datasources.jdbc.JDBCRDD$.resolveTable(JDBCRDD.scala:64)
Caused by: java.net.SocketTimeoutException: Read timed out
	at java.base/sun.nio.ch.NioSocketImpl.timedRead(NioSocketImpl.java:288)
	at java.base/sun.nio.ch.NioSocketImpl.implRead(NioSocketImpl.java:314)
	at java.base/java.net.Socket$SocketInputStream.read(Socket.java:976)"""

PERMISSION_ERROR = (
    "[INSUFFICIENT_PERMISSIONS] Insufficient privileges:\n"
    "User does not have SELECT on Table 'main.finance.gl_entries'. SQLSTATE: 42501"
)
PERMISSION_TRACE = """---------------------------------------------------------------------------
AnalysisException                         Traceback (most recent call last)
File <command-1593027746120031>, line 3
      1 from pyspark.sql import functions as F
----> 3 gl = spark.table("main.finance.gl_entries").where(F.col("period") == period)

AnalysisException: [INSUFFICIENT_PERMISSIONS] Insufficient privileges:
User does not have SELECT on Table 'main.finance.gl_entries'. SQLSTATE: 42501"""

SYNTAX_ERROR = """[PARSE_SYNTAX_ERROR] Syntax error at or near 'FROM'. SQLSTATE: 42601 (line 4, pos 0)

== SQL ==
SELECT campaign_id,
       count(DISTINCT user_id) AS reach,
       sum(conversions) AS conversions,
FROM main.marketing.campaign_events
^^^
GROUP BY campaign_id"""

NETWORK_ERROR = (
    "ConnectionError: HTTPSConnectionPool(host='api.fxrates.example.net', port=443): Max retries exceeded with url: "
    "/v2/latest?base=EUR (Caused by NewConnectionError('<urllib3.connection.HTTPSConnection object at "
    "0x7f9b2c4d1e50>: Failed to establish a new connection: [Errno 111] Connection refused'))"
)
NETWORK_TRACE = """Traceback (most recent call last):
  File "/Workspace/Repos/treasury/fx-ingest/fx_ingest/fetch.py", line 41, in fetch_rates
    response = session.get(f"{BASE_URL}/v2/latest", params={"base": base}, timeout=30)
  File "/databricks/python/lib/python3.11/site-packages/requests/adapters.py", line 700, in send
    raise ConnectionError(e, request=request)
requests.exceptions.ConnectionError: HTTPSConnectionPool(host='api.fxrates.example.net', port=443): Max retries exceeded with url: /v2/latest?base=EUR (Caused by NewConnectionError('<urllib3.connection.HTTPSConnection object at 0x7f9b2c4d1e50>: Failed to establish a new connection: [Errno 111] Connection refused'))"""

CAST_ERROR = (
    "[CAST_INVALID_INPUT] The value '2024-02-30' of the type \"STRING\" cannot be cast to \"DATE\" because it is "
    "malformed. Correct the value as per the syntax, or change its target type. Use `try_cast` to tolerate malformed "
    "input and return NULL instead. SQLSTATE: 22018"
)
CAST_TRACE = """Py4JJavaError: An error occurred while calling o377.saveAsTable.
: org.apache.spark.SparkDateTimeException: [CAST_INVALID_INPUT] The value '2024-02-30' of the type "STRING" cannot be cast to "DATE" because it is malformed. Correct the value as per the syntax, or change its target type. Use `try_cast` to tolerate malformed input and return NULL instead. SQLSTATE: 22018
== SQL (line 1, position 8) ==
CAST(event_date AS DATE)
       ^^^^^^^^^^^^^^^^^^^^^^^^
	at org.apache.spark.sql.errors.QueryExecutionErrors$.invalidInputInCastToDatetimeError(QueryExecutionErrors.scala:145)"""

SERVERLESS_OOM_ERROR = (
    "The Python process exited with exit code 137 (SIGKILL: Killed). This may have been caused by an OOM error. "
    "Check your command's memory usage."
)

CONCURRENT_APPEND_ERROR = (
    "[DELTA_CONCURRENT_APPEND] ConcurrentAppendException: Files were added to the root of the table by a concurrent "
    "update. Please try the operation again.\nConflicting commit: {\"timestamp\":1718092337000,\"operation\":\"MERGE\"}"
)

DRIVER_RESTART_ERROR = (
    "The spark driver has stopped unexpectedly and is restarting. Your notebook will be automatically reattached."
)


def _notebook(key: str, path: str, *, cluster: str | None = "etl_cluster", depends_on: tuple[str, ...] = (),
              max_retries: int = 0, **extra: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "task_key": key,
        "notebook_task": {"notebook_path": path, "source": "WORKSPACE"},
        "timeout_seconds": 7200,
        "max_retries": max_retries,
        "depends_on": [{"task_key": d} for d in depends_on],
        **extra,
    }
    if cluster:
        task["job_cluster_key"] = cluster
    return {k: v for k, v in task.items() if v != []}


def _job(sim: DatabricksSimulator, name: str, owner: str, tasks: list[dict[str, Any]], **settings: Any) -> int:
    settings.setdefault("job_clusters", [{"job_cluster_key": "etl_cluster", "new_cluster": dict(STANDARD_CLUSTER)}])
    return sim.add_job(
        name, tasks, owner=owner,
        email_notifications={"on_failure": [owner], "no_alert_for_skipped_runs": True},
        webhook_notifications={"on_failure": [{"id": AGENT_WEBHOOK_DESTINATION}]},
        schedule={"quartz_cron_expression": "0 0 2 * * ?", "timezone_id": "Europe/Amsterdam", "pause_status": "UNPAUSED"},
        **settings,
    )


MISSING_TABLE_ERROR = (
    "[TABLE_OR_VIEW_NOT_FOUND] The table or view `main.sales_raw.orders_apac` cannot be found. Verify the spelling "
    "and correctness of the schema and catalog. SQLSTATE: 42P01; line 1 pos 14"
)


def load_demo_workspace(sim: DatabricksSimulator, *, shapes: bool = False) -> dict[str, tuple[int, int]]:
    """Create the demo jobs, each with one failed (or cancelled) run; returns name -> (job_id, run_id).

    shapes: also the for_each and run_job jobs of `load_shape_scenarios`."""
    out: dict[str, tuple[int, int]] = {}

    oom = TaskFailure(error=OOM_ERROR, error_trace=OOM_TRACE)
    job = _job(sim, "nightly_sales_etl", "sales-analytics@contoso.example", [
        _notebook("ingest_orders", "/Repos/sales/etl/ingest_orders"),
        _notebook("transform_sales", "/Repos/sales/etl/transform_sales", depends_on=("ingest_orders",)),
        _notebook("publish_sales_mart", "/Repos/sales/etl/publish_sales_mart", depends_on=("transform_sales",)),
    ], tags={"team": "sales-analytics"}, parameters=[{"name": "run_date", "default": "2024-06-11"}])
    run = sim.fail_run(job, {"transform_sales": oom}, job_parameters={"run_date": "2024-06-11"})
    sim.script_repair(run, succeed_if_resized(oom), times=3)  # the same size fails the same way
    out["oom_job_cluster"] = (job, run)

    job = _job(sim, "crm_accounts_sync", "crm-integration@contoso.example", [
        _notebook("extract_accounts", "/Repos/crm/sync/extract_accounts", max_retries=1,
                  min_retry_interval_millis=60000),
        _notebook("merge_accounts", "/Repos/crm/sync/merge_accounts", depends_on=("extract_accounts",)),
    ])
    run = sim.fail_run(job, {"extract_accounts": TaskFailure(error=READ_TIMEOUT_ERROR, error_trace=READ_TIMEOUT_TRACE)})
    sim.script_repair(run, "success")
    out["read_timeout"] = (job, run)

    job = _job(sim, "finance_gl_reconciliation", "finance-data@contoso.example", [
        _notebook("reconcile_gl", "/Repos/finance/close/reconcile_gl"),
    ], tags={"team": "finance", "criticality": "high"})
    out["uc_permission"] = (job, sim.fail_run(job, {"reconcile_gl": TaskFailure(
        error=PERMISSION_ERROR, error_trace=PERMISSION_TRACE)}))

    job = _job(sim, "marketing_kpi_refresh", "marketing-bi@contoso.example", [{
        "task_key": "refresh_kpis",
        "sql_task": {"file": {"path": "/Repos/marketing/kpis/campaign_reach.sql", "source": "WORKSPACE"},
                     "warehouse_id": "3f8a2b71c9d04e15"},
        "timeout_seconds": 1800,
    }], job_clusters=[])
    out["sql_syntax"] = (job, sim.fail_run(job, {"refresh_kpis": TaskFailure(error=SYNTAX_ERROR)}))

    job = _job(sim, "fx_rates_ingest", "treasury-data@contoso.example", [{
        "task_key": "fetch_rates",
        "spark_python_task": {"python_file": "/Workspace/Repos/treasury/fx-ingest/fx_ingest/fetch.py",
                              "parameters": ["--base", "EUR"]},
        "job_cluster_key": "etl_cluster",
        "timeout_seconds": 900,
    }])
    run = sim.fail_run(job, {"fetch_rates": TaskFailure(error=NETWORK_ERROR, error_trace=NETWORK_TRACE,
                                                        logs=NETWORK_TRACE)})
    sim.script_repair(run, "success")
    out["network"] = (job, run)

    job = _job(sim, "customer_events_silver", "customer-data@contoso.example", [
        _notebook("bronze_to_silver", "/Repos/customer/events/bronze_to_silver"),
    ])
    out["data_cast"] = (job, sim.fail_run(job, {"bronze_to_silver": TaskFailure(error=CAST_ERROR,
                                                                                error_trace=CAST_TRACE)}))

    job = _job(sim, "inventory_snapshot", "supply-chain-data@contoso.example", [
        _notebook("snapshot_inventory", "/Repos/supply/inventory/snapshot"),
        _notebook("export_snapshot", "/Repos/supply/inventory/export", depends_on=("snapshot_inventory",)),
    ])
    out["user_cancelled"] = (job, sim.fail_run(job, {"snapshot_inventory": TaskFailure(
        error=None, result_state="CANCELED", termination_code="USER_CANCELED")}))

    job = _job(sim, "ml_feature_backfill", "ml-platform@contoso.example", [{
        "task_key": "backfill_features",
        "spark_python_task": {"python_file": "/Workspace/Repos/ml/features/backfill.py",
                              "parameters": ["--days", "365"]},
        "environment_key": "default",
        "timeout_seconds": 10800,
    }], job_clusters=[], environments=[{"environment_key": "default",
                                        "spec": {"client": "2", "dependencies": ["scikit-learn==1.5.0"]}}])
    out["oom_serverless"] = (job, sim.fail_run(job, {"backfill_features": TaskFailure(error=SERVERLESS_OOM_ERROR)}))

    job = _job(sim, "customer_360_pipeline", "customer-data@contoso.example", [
        _notebook("ingest_crm", "/Repos/c360/ingest_crm"),
        _notebook("ingest_web_events", "/Repos/c360/ingest_web_events"),
        _notebook("build_profiles", "/Repos/c360/build_profiles", depends_on=("ingest_crm", "ingest_web_events")),
        _notebook("publish_profiles", "/Repos/c360/publish_profiles", depends_on=("build_profiles",)),
        _notebook("refresh_dashboards", "/Repos/c360/refresh_dashboards", depends_on=("publish_profiles",)),
    ])
    run = sim.fail_run(job, {"build_profiles": TaskFailure(error=CONCURRENT_APPEND_ERROR)})
    sim.script_repair(run, "success")
    out["multi_task_upstream"] = (job, run)

    job = _job(sim, "legacy_billing_export", "billing-ops@contoso.example", [
        _notebook("export_invoices", "/Repos/billing/legacy/export_invoices"),
    ], tags={"ai_agent": "off", "team": "billing"})
    out["agent_off"] = (job, sim.fail_run(job, {"export_invoices": TaskFailure(
        error=DRIVER_RESTART_ERROR, termination_code="DRIVER_ERROR", state_message=DRIVER_RESTART_ERROR)}))
    if shapes:
        out.update(load_shape_scenarios(sim))
    return out


def load_shape_scenarios(sim: DatabricksSimulator) -> dict[str, tuple[int, int]]:
    """A for_each job with one failed iteration (the cause only in that iteration), and a run_job job whose
    child run fails with a read timeout (both jobs notify the agent, as in real workspaces)."""
    out: dict[str, tuple[int, int]] = {}
    job = _job(sim, "regional_sales_rollup", "sales-analytics@contoso.example", [{
        "task_key": "rollup_per_region",
        "for_each_task": {
            "inputs": '["emea", "amer", "apac"]', "concurrency": 3,
            "task": {"task_key": "rollup_region", "job_cluster_key": "etl_cluster", "timeout_seconds": 3600,
                     "notebook_task": {"notebook_path": "/Repos/sales/rollup/rollup_region", "source": "WORKSPACE",
                                       "base_parameters": {"region": "{{input}}"}}},
        },
    }], tags={"team": "sales-analytics"})
    out["for_each_iteration"] = (job, sim.fail_run(job, {"rollup_per_region": ForEachFailure({2: TaskFailure(
        error=MISSING_TABLE_ERROR)})}))

    child = _job(sim, "orders_load", "orders-data@contoso.example", [
        _notebook("load_orders", "/Repos/orders/load/load_orders"),
    ])
    parent = _job(sim, "orders_orchestrator", "orders-data@contoso.example", [
        {"task_key": "run_orders_load", "run_job_task": {"job_id": child}},
    ], job_clusters=[])
    run = sim.fail_run(parent, {"run_orders_load": TaskFailure(error=READ_TIMEOUT_ERROR,
                                                               error_trace=READ_TIMEOUT_TRACE)})
    sim.script_repair(run, "success")
    out["run_job_child"] = (parent, run)
    return out
