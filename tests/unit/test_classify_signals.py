"""Each kind of signal the classifier reads, from the strongest (run state) to the weakest (wording)."""

from shared.classify import FailureSignals, classify
from shared.taxonomy import Action, Category


def classified(text="", **fields):
    return classify(FailureSignals(text=text, **fields))


# --- run state and termination details -----------------------------------------------------------------------

def test_result_state_canceled_is_cancelled_whatever_the_text_says():
    result = classified("org.apache.spark.SparkException: Job 14 cancelled because SparkContext was shut down",
                        result_state="CANCELED")
    assert (result.category, result.action) == (Category.CANCELLED, Action.IGNORE)
    assert result.rule_id == "state-result-canceled"


def test_result_state_timedout_is_timeout_although_the_termination_code_reads_canceled():
    result = classified("", result_state="TIMEDOUT", termination_code="CANCELED")
    assert result.category is Category.TIMEOUT


def test_termination_code_user_canceled_is_cancelled():
    assert classified("Run cancelled by user", termination_code="USER_CANCELED").category is Category.CANCELLED


def test_termination_code_unauthorized_error_is_permission():
    assert classified("", termination_code="UNAUTHORIZED_ERROR").category is Category.PERMISSION


def test_termination_code_written_in_the_text_is_read_too():
    text = 'status.termination_details: {"code": "MAX_CONCURRENT_RUNS_EXCEEDED"}'
    assert classified(text).category is Category.CONCURRENCY


def test_generic_termination_code_yields_to_the_root_cause_in_the_output():
    result = classified("Workload failed, see run output for details\njava.lang.OutOfMemoryError: Java heap space",
                        termination_code="DRIVER_ERROR")
    assert result.category is Category.RESOURCE


def test_termination_type_alone_is_a_weak_signal():
    result = classified("", termination_type="CLOUD_FAILURE")
    assert result.category is Category.INFRASTRUCTURE
    assert result.confidence < 0.5


def test_termination_type_never_outranks_what_the_text_says():
    result = classified("KeyError: 'region'", termination_type="CLOUD_FAILURE")
    assert result.category is Category.CODE


# --- cluster termination reasons -------------------------------------------------------------------------------

def test_cluster_reason_code_field_decides():
    result = classified("", cluster_reason_code="DRIVER_OUT_OF_MEMORY", cluster_reason_type="CLIENT_ERROR")
    assert result.category is Category.RESOURCE


def test_cluster_reason_code_type_token_in_a_launch_failure():
    text = ("Cluster 0612-1 was terminated while waiting on it to be ready: Cluster 0612-1 is in unexpected state "
            "Terminated: SPOT_INSTANCE_TERMINATION(CLOUD_FAILURE): instance_id:i-0abc.")
    assert classified(text).category is Category.INFRASTRUCTURE


def test_client_error_tag_does_not_make_a_capacity_stockout_a_user_error():
    text = "Cluster 0612-1 is in unexpected state Terminated: AWS_INSUFFICIENT_INSTANCE_CAPACITY_FAILURE(CLIENT_ERROR)."
    assert classified(text).category is Category.INFRASTRUCTURE


def test_cloud_error_code_inside_a_generic_launch_failure_decides():
    text = ("Cluster 0612-1 is in unexpected state Terminated: CLOUD_PROVIDER_LAUNCH_FAILURE(CLOUD_FAILURE): "
            "azure_error_code:PublicIPCountLimitReached,azure_error_message:Cannot create more than 60 public IP "
            "addresses for this subscription in this region.")
    assert classified(text).category is Category.QUOTA


# --- Spark error classes and SQLSTATE ----------------------------------------------------------------------------

def test_bracketed_error_class_decides():
    text = "[DELTA_CONCURRENT_APPEND] ConcurrentAppendException: Files were added by a concurrent update."
    assert classified(text).category is Category.CONCURRENCY


def test_error_class_with_a_subclass_matches_its_family():
    text = "[UNRESOLVED_COLUMN.WITH_SUGGESTION] A column with name `x` cannot be resolved. SQLSTATE: 42703"
    assert classified(text).category is Category.CODE


def test_sqlstate_class_22_alone_means_data():
    assert classified("[SOME_FUTURE_VALUE_PROBLEM] bad value. SQLSTATE: 22XYZ").category is Category.DATA


def test_sqlstate_class_08_alone_means_network():
    assert classified("Driver error. SQLState: 08006").category is Category.NETWORK


def test_sqlstate_42501_is_permission():
    assert classified("ERROR: not allowed here (SQLSTATE 42501)").category is Category.PERMISSION


def test_sqlstate_class_40_is_concurrency():
    assert classified("transaction rolled back; sqlstate=40P01").category is Category.CONCURRENCY


def test_sqlstate_in_a_pyodbc_tuple_is_read():
    text = "pyodbc.ProgrammingError: ('42S02', \"[42S02] [Microsoft][ODBC Driver 18 for SQL Server]Invalid object\")"
    assert classified(text).category is Category.DATA


def test_sqlstate_in_postgres_wire_fields_is_read():
    text = "pg8000.exceptions.DatabaseError: {'S': 'ERROR', 'C': '40001', 'M': 'could not complete'}"
    assert classified(text).category is Category.CONCURRENCY


# --- exception types and the root cause ---------------------------------------------------------------------------

def test_last_caused_by_is_the_root_cause():
    text = ("org.apache.spark.SparkException: Job aborted due to stage failure\n"
            "Caused by: java.io.FileNotFoundException: /mnt/raw/x.parquet\n"
            "\tat org.apache.hadoop.fs.FileSystem.open(FileSystem.java:1)\n"
            "Caused by: java.net.SocketTimeoutException: Read timed out\n")
    assert classified(text).category is Category.TIMEOUT


def test_py4j_error_is_unwrapped_to_the_jvm_exception():
    text = ("py4j.protocol.Py4JJavaError: An error occurred while calling o96.save.\n"
            ": java.lang.OutOfMemoryError: GC overhead limit exceeded\n\tat java.util.Arrays.copyOf(Arrays.java:3332)")
    result = classified(text)
    assert result.category is Category.RESOURCE
    assert "OutOfMemoryError" in result.evidence[0]


def test_python_traceback_is_decided_by_its_last_exception():
    text = ("Traceback (most recent call last):\n  File \"/Workspace/jobs/a.py\", line 3, in <module>\n"
            "    main()\nKeyError: 'region'")
    assert classified(text).category is Category.CODE


def test_python_direct_cause_chain_is_decided_by_the_first_exception():
    text = ("ConnectionRefusedError: [Errno 111] Connection refused\n\n"
            "The above exception was the direct cause of the following exception:\n\n"
            "Traceback (most recent call last):\n  File \"/Workspace/jobs/push.py\", line 9, in <module>\n"
            "    push()\nRuntimeError: could not push metrics")
    assert classified(text).category is Category.NETWORK


def test_python_repr_nesting_reaches_the_innermost_exception():
    text = "azure.core.exceptions.ServiceResponseError: ('Connection aborted.', TimeoutError('The write operation timed out'))"
    assert classified(text).category is Category.TIMEOUT


def test_stage_failure_is_decided_by_the_task_exception_it_names():
    text = ("org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in stage 4.0 failed 4 times, "
            "most recent failure: Lost task 0.3 (executor 1): java.sql.SQLTimeoutException: ORA-01013: user requested "
            "cancel of current operation")
    assert classified(text).category is Category.TIMEOUT


def test_jvm_inner_class_exception_is_matched_by_its_inner_name():
    text = "com.databricks.backend.common.rpc.SparkDriverExceptions$SparkDriverUnavailable: driver unavailable"
    assert classified(text).category is Category.INFRASTRUCTURE


# --- cloud codes, messages, wording -----------------------------------------------------------------------------------

def test_cloud_error_code_in_a_generic_sdk_error_decides():
    text = "botocore.exceptions.ClientError: An error occurred (SlowDown) when calling the PutObject operation"
    assert classified(text).category is Category.THROTTLING


def test_message_signature_decides_when_the_type_is_generic():
    assert classified("java.sql.SQLException: Lock wait timeout exceeded; try restarting transaction").category \
        is Category.CONCURRENCY


def test_wording_fallback_has_low_confidence():
    result = classified("the export step timed out somewhere")
    assert result.category is Category.TIMEOUT
    assert result.confidence < 0.75
    assert result.rule_id == "w-timeout"


def test_nothing_recognisable_is_unknown_and_emailed():
    result = classified("something odd happened")
    assert (result.category, result.action, result.rule_id) == (Category.UNKNOWN, Action.SEND_EMAIL, None)


def test_context_rule_applies_whatever_the_depth_of_the_cause():
    text = ("ERROR: Could not install packages due to an OSError: HTTPSConnectionPool(host='pypi.org', port=443): "
            "Max retries exceeded with url: /simple/pandas/ (Caused by NewConnectionError('<conn>: Failed to "
            "establish a new connection: [Errno 101] Network is unreachable'))")
    assert classified(text).category is Category.INFRASTRUCTURE
