"""What every classification carries: category, first action, confidence, evidence, excerpt, fingerprint."""

from shared.classify import Classification, FailureSignals, classify
from shared.classify.excerpt import MAX_CHARS
from shared.classify.signals import MAX_CHARS as BOUND, parse
from shared.taxonomy import FIRST_ACTION, Category

LONG_TRACE = (
    "Py4JJavaError: An error occurred while calling o412.saveAsTable.\n"
    ": org.apache.spark.SparkException: Job aborted due to stage failure: Task 1 in stage 2.0 failed 4 times\n"
    + "\tat org.apache.spark.scheduler.DAGScheduler.failJobAndIndependentStages(DAGScheduler.scala:2984)\n" * 20000
    + "Caused by: java.lang.OutOfMemoryError: Java heap space\n\tat com.acme.etl.Enricher.lookup(Enricher.scala:77)\n"
)


def classified(text, **fields) -> Classification:
    return classify(FailureSignals(text=text, **fields))


def test_action_is_the_first_action_of_the_category():
    result = classified("java.lang.OutOfMemoryError: Java heap space")
    assert result.action is FIRST_ACTION[result.category]


def test_evidence_is_the_deciding_line():
    result = classified("Some wrapper line\nCaused by: java.net.UnknownHostException: db.internal")
    assert result.evidence[0] == "Caused by: java.net.UnknownHostException: db.internal"


def test_evidence_lines_are_trimmed():
    result = classified("java.lang.OutOfMemoryError: Java heap space " + "x" * 5000)
    assert result.evidence and all(len(line) <= 300 for line in result.evidence)


def test_excerpt_of_a_huge_trace_is_short_and_keeps_the_root_cause():
    result = classified(LONG_TRACE)
    assert len(LONG_TRACE) > 1_000_000
    assert len(result.excerpt) <= MAX_CHARS
    assert "Py4JJavaError" in result.excerpt
    assert "java.lang.OutOfMemoryError: Java heap space" in result.excerpt
    assert "com.acme.etl.Enricher.lookup" in result.excerpt  # the first frame of the user's code


def test_huge_trace_is_classified_by_its_tail():
    assert classified(LONG_TRACE).category is Category.RESOURCE


def test_huge_text_is_bounded_before_parsing():
    assert len(parse("x" * 10 * BOUND).text) <= BOUND + 10


def test_excerpt_skips_runtime_frames_and_keeps_notebook_cells():
    text = ("Traceback (most recent call last):\n  File \"/databricks/spark/python/pyspark/sql/readwriter.py\", "
            "line 300, in load\n    return x\n  File \"<command-42>\", line 7, in <module>\n    df = load()\n"
            "KeyError: 'region'")
    excerpt = classified(text).excerpt
    assert "readwriter.py" not in excerpt
    assert "KeyError: 'region'" in excerpt


def test_confidence_is_between_zero_and_one():
    for text in ("", "x", "java.lang.OutOfMemoryError", "timed out", "[PARSE_SYNTAX_ERROR] bad SQLSTATE: 42601"):
        assert 0.0 <= classified(text).confidence <= 1.0


def test_conflicting_signals_lower_the_confidence():
    clear = classified("java.sql.SQLException: Lock wait timeout exceeded; try restarting transaction")
    conflicted = classified("[DELTA_CONCURRENT_WRITE] concurrent write\nCaused by: java.lang.OutOfMemoryError: x")
    assert conflicted.confidence < clear.confidence


def test_to_dict_is_json_ready():
    data = classified("KeyError: 'region'").to_dict()
    assert data["category"] == "code" and data["action"] == "SEND_EMAIL"
    assert isinstance(data["evidence"], list) and isinstance(data["fingerprint"], str)
    assert set(data) == {"category", "action", "confidence", "evidence", "excerpt", "fingerprint", "rule_id"}


def test_same_failure_in_two_runs_has_the_same_fingerprint():
    one = classified("Task load failed with message: Cluster 0612-111213-k4l6z8x0 is in unexpected state "
                     "Terminated: CLOUD_ACCOUNT_POD_QUOTA_EXCEEDED(CLIENT_ERROR)")
    two = classified("Task ingest failed with message: Cluster 0701-020304-a1b2c3d4 is in unexpected state "
                     "Terminated: CLOUD_ACCOUNT_POD_QUOTA_EXCEEDED(CLIENT_ERROR)")
    assert one.fingerprint == two.fingerprint


def test_different_root_causes_have_different_fingerprints():
    wrapper = "org.apache.spark.SparkException: Job aborted due to stage failure\nCaused by: "
    assert classified(wrapper + "java.net.UnknownHostException: db").fingerprint != \
        classified(wrapper + "java.lang.OutOfMemoryError: Java heap space").fingerprint
