"""The cases a keyword table gets wrong: misleading words, wrappers around the real cause, platform tags."""

from shared.classify import FailureSignals, classify
from shared.taxonomy import Action, Category


def category_of(text, **fields):
    return classify(FailureSignals(text=text, **fields)).category


def test_module_not_found_is_code_not_data():
    assert category_of("ModuleNotFoundError: No module named 'great_expectations'") is Category.CODE


def test_class_not_found_is_code_not_data():
    assert category_of("java.lang.ClassNotFoundException: com.acme.udf.NormalizeAddress") is Category.CODE


def test_jdbc_login_failure_mentioning_connection_is_permission():
    text = ("java.sql.SQLException: Cannot create PoolableConnectionFactory (Login failed for user 'reporting'. "
            "ClientConnectionId:abc)\nCaused by: com.microsoft.sqlserver.jdbc.SQLServerException: Login failed for "
            "user 'reporting'.")
    assert category_of(text) is Category.PERMISSION


def test_password_authentication_on_connect_is_permission():
    text = ('org.postgresql.util.PSQLException: FATAL: password authentication failed for user "etl"\n'
            "\tat org.postgresql.core.v3.ConnectionFactoryImpl.tryConnect(ConnectionFactoryImpl.java:203)")
    assert category_of(text) is Category.PERMISSION


def test_table_named_memory_stats_is_not_resource():
    text = ("[TABLE_OR_VIEW_NOT_FOUND] The table or view `ops`.`memory_stats` cannot be found. SQLSTATE: 42P01\n"
            "File <command-1>, line 3\n----> 3 df = spark.table('ops.memory_stats')")
    assert category_of(text) is Category.DATA


def test_memory_word_in_a_source_line_is_ignored():
    text = ("Traceback (most recent call last):\n  File \"/Workspace/jobs/a.py\", line 5, in <module>\n"
            "    out_of_memory_report = build(timeout_s)\nNameError: name 'build' is not defined")
    assert category_of(text) is Category.CODE


def test_the_last_caused_by_decides_over_an_earlier_one():
    text = ("org.apache.spark.SparkException: [TASK_WRITE_FAILED] Task failed while writing rows. SQLSTATE: 58030\n"
            "Caused by: java.io.IOException: Connection reset by peer\n"
            "Caused by: org.apache.spark.sql.delta.schema.DeltaInvariantViolationException: "
            "[DELTA_NOT_NULL_CONSTRAINT_VIOLATED] NOT NULL constraint violated for column: id. SQLSTATE: 23502")
    assert category_of(text) is Category.DATA


def test_nested_causes_two_wrappers_deep():
    text = ("py4j.protocol.Py4JJavaError: An error occurred while calling o543.saveAsTable: "
            "java.util.concurrent.ExecutionException: java.lang.IllegalArgumentException: "
            "Initial capacity 730219499 exceeds maximum capacity of 536870912")
    assert category_of(text) is Category.RESOURCE


def test_lock_wait_timeout_is_concurrency_not_timeout():
    assert category_of("Lock wait timeout exceeded; try restarting transaction") is Category.CONCURRENCY


def test_connect_timeout_is_network_and_read_timeout_is_timeout():
    assert category_of("java.net.SocketTimeoutException: connect timed out") is Category.NETWORK
    assert category_of("java.net.SocketTimeoutException: Read timed out") is Category.TIMEOUT


def test_github_403_rate_limit_is_throttling_not_permission():
    text = '403 {"message": "API rate limit exceeded for installation ID 4242."}'
    assert category_of(text) is Category.THROTTLING


def test_429_for_insufficient_quota_is_quota_not_throttling():
    text = ("openai.RateLimitError: Error code: 429 - {'error': {'message': 'You exceeded your current quota, please "
            "check your plan and billing details.', 'type': 'insufficient_quota'}}")
    assert category_of(text) is Category.QUOTA


def test_per_minute_quota_is_throttling():
    text = ("google.api_core.exceptions.TooManyRequests: 429 Quota exceeded for quota metric 'Read requests' and "
            "limit 'Read requests per minute per user'")
    assert category_of(text) is Category.THROTTLING


def test_503_slow_down_is_throttling_not_network():
    assert category_of("503 Service Unavailable: SlowDown: Please reduce your request rate.") is Category.THROTTLING


def test_executor_lost_by_a_running_task_is_resource():
    text = "ExecutorLostFailure (executor 14 exited caused by one of the running tasks) Reason: Command exited with code 52"
    assert category_of(text) is Category.RESOURCE


def test_executor_lost_unrelated_to_tasks_is_infrastructure():
    text = "ExecutorLostFailure (executor 3 exited unrelated to the running tasks) Reason: Executor decommission."
    assert category_of(text) is Category.INFRASTRUCTURE


def test_library_install_user_error_tag_with_infra_fault_text_is_infrastructure():
    text = ("Library installation failed for library due to user error for pypi { package: \"x\" } Error Messages: "
            "due to infra fault. Could not reach driver of cluster 0612-1 for 120 seconds.")
    assert category_of(text) is Category.INFRASTRUCTURE


def test_missing_config_file_is_code_but_missing_data_file_is_data():
    assert category_of("FileNotFoundError: [Errno 2] No such file or directory: 'conf/prod.yaml'") is Category.CODE
    assert category_of("FileNotFoundError: [Errno 2] No such file or directory: '/dbfs/mnt/in/orders.csv'") \
        is Category.DATA


def test_cancellation_wording_alone_never_ignores_a_failure():
    result = classify(FailureSignals(text="Query (123) cancelled by WLM abort action of Query Monitoring Rule"))
    assert result.action is not Action.IGNORE


def test_redshift_wlm_abort_is_a_timeout():
    text = "ProgrammingError: {'S': 'ERROR', 'C': '57014', 'M': 'Query (1) cancelled by WLM abort action of Query Monitoring Rule'}"
    assert category_of(text) is Category.TIMEOUT


def test_py4j_gateway_death_is_infrastructure_not_network():
    text = ("py4j.protocol.Py4JNetworkError: Answer from Java side is empty\n"
            "During handling of the above exception, another exception occurred:\n"
            "ConnectionRefusedError: [Errno 111] Connection refused")
    assert category_of(text) is Category.INFRASTRUCTURE


def test_asyncio_timeout_is_timeout_although_cancelled_error_comes_first():
    text = ("asyncio.exceptions.CancelledError\n\nDuring handling of the above exception, another exception "
            "occurred:\n\nTraceback (most recent call last):\n  File \"/Workspace/jobs/fetch.py\", line 9, in main\n"
            "    await asyncio.wait_for(fetch(), 30)\nTimeoutError")
    assert category_of(text) is Category.TIMEOUT


def test_a_bare_cancelled_word_does_not_ignore_a_failure():
    text = "Airflow: upstream sensor status CANCELLED; downstream task failed with exit code 1"
    assert classify(FailureSignals(text=text)).action is not Action.IGNORE
