"""Round 2 of the classifier: families of exception names, ties broken by specificity, quoted text that is
data, orchestrator phrasing, permission causes under platform wrappers, and honest confidence.

Texts follow public formats (Python's and Java's exception trees, SDK exception modules, Spark error-condition
templates, pip and Airflow log lines) with invented values."""

from __future__ import annotations

import pytest

from shared.classify import FailureSignals, classify
from shared.classify.classifier import classify_with
from shared.classify.rules import Rule, RuleIndex
from shared.decide import first_attempt_action
from shared.taxonomy import Action, Category

GATE = 0.75


def c(text: str, **fields):
    return classify(FailureSignals(text=text, **fields))


# --- families: a type nobody wrote a rule for lands in its family, less confident than an exact name ---------------

@pytest.mark.parametrize("text,category", [
    ("com.acme.ingest.VendorBufferOutOfMemoryError: arena 7 exhausted", Category.RESOURCE),
    ("acme_gpu.errors.DeviceMemoryError: could not allocate 2.0 GiB on device 0", Category.RESOURCE),
    ("io.acme.client.QueryExecutionTimeoutException: no rows after 600 s", Category.TIMEOUT),
    ("io.acme.client.PoolConnectTimeoutException: broker-3:9093 after 10000 ms", Category.NETWORK),
    ("com.acme.lake.StorageAccessDeniedException: principal sp-etl may not read /raw/events", Category.PERMISSION),
    ("acme_sdk.exceptions.VaultAuthenticationFailure: client assertion rejected", Category.PERMISSION),
    ("acme_graph.errors.GraphApiThrottledException: retry after 30 s", Category.THROTTLING),
    ("com.acme.db.RowLockTimeoutError: lock on row 42 of ledger held by txn 9", Category.CONCURRENCY),
    ("com.acme.mq.BrokerConnectionRefusedError: mq-2.internal:5671", Category.NETWORK),
])
def test_an_unknown_subclass_is_classified_by_its_family(text, category):
    result = c(text)
    assert result.category is category and result.confidence >= GATE


def test_a_family_match_is_less_confident_than_the_exact_name():
    exact = c("MemoryError: arena 3 exhausted")
    family = c("acme_gpu.errors.DeviceMemoryError: arena 3 exhausted on device 0")
    assert family.category is exact.category is Category.RESOURCE and family.rule_id == "fam-memory"
    assert family.confidence < exact.confidence


@pytest.mark.parametrize("text", [
    "com.acme.lake.CsvMalformedRowException: row 812 has 9 fields, expected 11",
    "acme.pipeline.PipelineMisconfigurationException: stage 'join' names no input",
    "acme.jobs.StageCancelledException: stage 4 was cancelled",
])
def test_ambiguous_families_stay_below_the_gate(text):
    assert c(text).confidence < GATE


def test_a_cancellation_read_from_a_name_alone_is_never_ignored():
    result = c("acme.jobs.StageCancelledException: stage 4 was cancelled")
    assert result.category is Category.CANCELLED and result.confidence < GATE
    assert first_attempt_action(result.category, result.action, result.confidence, GATE) is Action.SEND_EMAIL


# --- ties: specificity, never file order -------------------------------------------------------------------------

def rule(rule_id, category, kind, pattern, confidence=0.8):
    return Rule(rule_id, category, kind, pattern, confidence, "test rule")


def test_a_tie_goes_to_the_deeper_cause_whatever_the_file_order():
    text = "com.acme.Outer: wrapper said quota\nCaused by: com.acme.Inner: the disk is full"
    rules = (rule("a-quota", Category.QUOTA, "message", "quota", 0.8),
             rule("b-disk", Category.RESOURCE, "message", "disk is full", 0.8))
    for order in (rules, rules[::-1]):
        assert classify_with(RuleIndex(order), FailureSignals(text=text)).category is Category.RESOURCE


def test_a_tie_goes_to_the_exact_name_over_the_family_and_the_code_over_the_phrase():
    rules = (rule("p-phrase", Category.NETWORK, "message", "socket hiccup", 0.8),
             rule("c-code", Category.INFRASTRUCTURE, "error_class", "NODE_GONE", 0.8))
    text = "[NODE_GONE] socket hiccup"
    for order in (rules, rules[::-1]):
        assert classify_with(RuleIndex(order), FailureSignals(text=text)).category is Category.INFRASTRUCTURE
    fam = (rule("f-fam", Category.TIMEOUT, "exception_family", r"\w*Slow\w*", 0.8),
           rule("x-exact", Category.DATA, "exception", "SlowRecordException", 0.8))
    for order in (fam, fam[::-1]):
        result = classify_with(RuleIndex(order), FailureSignals(text="acme.SlowRecordException: record 7"))
        assert result.category is Category.DATA


def test_ties_are_deterministic_by_rule_id_when_nothing_else_differs():
    rules = (rule("m-two", Category.NETWORK, "message", "blip", 0.8),
             rule("m-one", Category.TIMEOUT, "message", "blip", 0.8))
    for order in (rules, rules[::-1]):
        assert classify_with(RuleIndex(order), FailureSignals(text="a blip")).rule_id == "m-one"


def test_pip_disk_full_and_permission_are_not_taken_for_an_unreachable_repository():
    head = ("Library installation failed for library due to user error. Error messages:\n"
            "ERROR: Could not install packages due to an OSError: ")
    assert c(head + "[Errno 28] No space left on device").category is Category.RESOURCE
    denied = head + "[Errno 13] Permission denied: '/local_disk0/.ephemeral_nfs/envs/pyenv/lib'"
    assert c(denied).category is Category.PERMISSION
    unreachable = head + ("HTTPSConnectionPool(host='pypi.org', port=443): Max retries exceeded with url: "
                          "/simple/polars/")
    assert c(unreachable).category is Category.INFRASTRUCTURE


# --- quoted text is data ---------------------------------------------------------------------------------------------

def test_a_state_written_in_the_text_is_not_the_runs_state():
    text = 'KeyError: \'items\' while reading response {"run_id": 77, "state": {"result_state": "CANCELED"}}'
    result = c(text)
    assert result.category is Category.CODE
    assert c("", result_state="CANCELED").category is Category.CANCELLED  # the API field still decides


def test_an_exception_name_inside_a_json_value_is_not_a_cause():
    text = ('[MALFORMED_RECORD_IN_PARSING.WITHOUT_SUGGESTION] Malformed records are detected in record parsing: '
            '[null,{"lvl":"ERROR","msg":"java.net.ConnectException: refused by upstream 10.9.8.7"}]. '
            "Parse Mode: FAILFAST. SQLSTATE: 22023")
    assert c(text).category is Category.DATA


# --- orchestrators and platform wrappers ---------------------------------------------------------------------------

def test_airflow_stopping_a_task_is_an_unsure_cancellation():
    result = c("[2025-03-04, 01:02:03 UTC] {local_task_job_runner.py:123} WARNING - State of this instance has been "
               "externally set to failed. Terminating instance.")
    assert result.category is Category.CANCELLED and result.confidence < GATE


def test_adf_and_dbt_wrappers_do_not_decide():
    adf = ("Operation on target Load_Sales failed: Run failed. [UNRESOLVED_COLUMN.WITH_SUGGESTION] A column, "
           "variable, or function parameter with name `amt` cannot be resolved. SQLSTATE: 42703")
    assert c(adf).category is Category.CODE
    dbt = ("Database Error in model fct_sales (models/marts/fct_sales.sql)\n  [INSUFFICIENT_PERMISSIONS] Insufficient "
           "privileges: User does not have MODIFY on Table `prod`.`marts`.`fct_sales`. SQLSTATE: 42501")
    assert c(dbt).category is Category.PERMISSION


def test_a_permission_cause_under_a_cluster_launch_wrapper_is_permission():
    text = ("Cluster '0304-050607-abcd1234' was terminated. Reason: INSTANCE_POOL_CLUSTER_FAILURE (CLIENT_ERROR). "
            "Parameters: databricks_error_message: You are not authorized to perform this operation. User: "
            "arn:aws:sts::000011112222:assumed-role/acme-pool/i-0abc is not authorized to perform: ec2:CreateFleet")
    assert c(text).category is Category.PERMISSION


def test_an_ambiguous_termination_code_is_below_the_gate():
    result = c("Cluster 0304-aa terminated. Reason: SPARK_STARTUP_FAILURE (CLIENT_ERROR)")
    assert result.confidence < GATE


# --- attempt-aware labels ----------------------------------------------------------------------------------------

def test_a_workspace_run_limit_is_concurrency_first_and_quota_when_it_persists():
    first = c("", termination_code="WORKSPACE_RUN_LIMIT_EXCEEDED")
    assert first.category is Category.CONCURRENCY
    for attempt in (2, 3):
        later = c("", termination_code="WORKSPACE_RUN_LIMIT_EXCEEDED", attempt=attempt)
        assert later.category is Category.QUOTA and later.rule_id == "term-workspace-run-limit-persists"


def test_only_token_rules_may_depend_on_the_attempt():
    from shared.classify.rules import validate

    bad = Rule("x", Category.QUOTA, "message", "limit", 0.8, "why", from_attempt=2)
    assert any("from_attempt" in p for p in validate([bad]))


def test_the_cli_reads_the_attempt_and_refuses_a_bad_one():
    from shared.commands.classify import RecordError, signals_from_record

    assert signals_from_record({"text": "x", "attempt": 3}).attempt == 3
    with pytest.raises(RecordError, match="attempt"):
        signals_from_record({"text": "x", "attempt": "two"})


# --- cloud codes a generic launch failure used to swallow ------------------------------------------------------------

@pytest.mark.parametrize("code,category", [
    ("ReadOnlyDisabledSubscription", Category.QUOTA), ("OperationNotAllowed", Category.QUOTA),
    ("PendingVerification", Category.QUOTA), ("SubscriptionNotFound", Category.PERMISSION),
    ("ScopeLocked", Category.PERMISSION), ("OptInRequired", Category.PERMISSION), ("Blocked", Category.PERMISSION),
    ("MissingSubscriptionRegistration", Category.CODE), ("DisallowedLocation", Category.CODE),
    ("InvalidSubnetID.NotFound", Category.CODE), ("Unsupported", Category.CODE), ("SpotMaxPriceTooLow", Category.CODE),
])
def test_a_cloud_code_under_a_launch_failure_is_classified_by_the_code_not_retried(code, category):
    text = (f"Cluster 0505-acme terminated. Reason: CLOUD_PROVIDER_LAUNCH_FAILURE (CLOUD_FAILURE). Parameters: "
            f"aws_api_error_code:{code}, databricks_error_message: The request for instances was refused.")
    result = c(text)
    assert result.category is category
    assert first_attempt_action(result.category, result.action, result.confidence, GATE) is Action.SEND_EMAIL


def test_a_capitalised_word_is_not_taken_for_an_account_code_outside_a_code_field():
    prose = c("Unsupported file format for table acme.raw: Blocked rows were skipped")
    assert prose.category is not Category.PERMISSION


def test_an_exception_type_named_in_a_sentence_is_weaker_evidence_below_the_gate():
    result = c("Fatal Python error: Cannot recover from MemoryError while normalizing exception.")
    assert result.category is Category.RESOURCE and result.confidence < GATE
    raised = c("MemoryError: cannot allocate 900 MiB")
    assert raised.confidence > result.confidence


def test_a_schema_mismatch_named_by_a_nested_jvm_class_is_data():
    text = ("org.apache.spark.SparkException: [TASK_WRITE_FAILED] Task failed while writing rows to abfss://lake/t. "
            "Caused by: org.acme.parquet.Converter$MismatchedSchemaException: column 'qty' expected INT32, found BINARY")
    assert c(text).category is Category.DATA


def test_a_git_provider_outage_at_checkout_is_infrastructure():
    assert c("Failed to checkout Git repository: 502 Bad Gateway from gitlab.acme.test").category is Category.INFRASTRUCTURE


def test_a_task_skipped_because_upstream_was_cancelled_is_cancelled():
    result = c("Task publish was skipped because upstream task refresh_gold_2 was cancelled")
    assert result.category is Category.CANCELLED


def test_a_termination_code_shared_with_the_cluster_enum_is_understood_as_either_field():
    assert c("", life_cycle_state="INTERNAL_ERROR", termination_code="SECRET_PERMISSION_DENIED").category \
        is Category.PERMISSION


def test_a_driver_restart_caused_by_preemption_is_infrastructure_not_memory():
    text = ("The spark driver has stopped unexpectedly and is restarting. Driver restarted due to node being "
            "preempted by the cloud provider.")
    assert c(text).category is Category.INFRASTRUCTURE


def test_an_arrow_conversion_of_a_bad_value_is_data():
    assert c("pyarrow.lib.ArrowInvalid: Could not convert 'n/a' with type str: tried to convert to double").category \
        is Category.DATA


def test_gpu_and_allocation_failures_are_resource_with_confidence():
    result = c("RuntimeError: CUDA out of memory. Tried to allocate 3.50 GiB (GPU 1; 22.0 GiB total capacity)")
    assert result.category is Category.RESOURCE and result.confidence >= GATE


def test_a_client_with_no_broker_or_host_to_talk_to_is_network():
    assert c("acme_kafka.errors.NoBrokersAvailable: NoBrokersAvailable").category is Category.NETWORK


def test_a_count_limit_reached_is_an_unsure_quota_and_a_dotnet_dns_failure_is_network():
    result = c("Error: the workspace has reached its limit of 3000 registered models.")
    assert result.category is Category.QUOTA and result.confidence < GATE
    assert c("Exception message: 'The remote name could not be resolved: feeds.acme.test'.").category \
        is Category.NETWORK


def test_a_private_package_index_refusing_credentials_is_permission_not_a_missing_package():
    text = ("ERROR: Could not find a version that satisfies the requirement acme-geo==3.2 (from versions: none)\n"
            "WARNING: 401 Client Error: Unauthorized for url: https://pypi.acme.test/simple/acme-geo/")
    assert c(text).category is Category.PERMISSION
    missing = ("ERROR: Could not find a version that satisfies the requirement acme-geo==3.2 (from versions: none)\n"
               "ERROR: No matching distribution found for acme-geo==3.2")
    assert c(missing).category is Category.CODE
