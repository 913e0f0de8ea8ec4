"""The fingerprint: the same failure again gives the same value; a different root cause a different one."""

from shared.fingerprint import fingerprint, normalize


def test_fingerprint_is_a_short_stable_hex_string():
    value = fingerprint("Read timed out", exception="java.net.SocketTimeoutException")
    assert len(value) == 16 and int(value, 16) >= 0
    assert value == fingerprint("Read timed out", exception="java.net.SocketTimeoutException")


def test_run_ids_and_timestamps_do_not_change_it():
    one = fingerprint("Run 77120045518890 failed at 2024-06-11T03:04:05.123Z after 3600 s")
    two = fingerprint("Run 12 failed at 2025-01-02 23:59:59 after 7 s")
    assert one == two


def test_uuids_hex_and_cluster_ids_do_not_change_it():
    one = fingerprint("Statement '01bb1644-0513-b332-2247-8306a8ddf13b' at 0x7f2b1c0d9e50 on cluster 0612-060001-z9x7c5v3")
    two = fingerprint("Statement '9e8d7c6b-5a4f-4e3d-2c1b-0a9f8e7d6c5b' at 0x7f00 on cluster 0701-121314-abcd1234")
    assert one == two


def test_paths_urls_hosts_and_ips_do_not_change_it():
    one = fingerprint("Connection to kafka-0.kafka.internal.acme.net/10.30.2.14:9092 for s3://a/b/c.parquet via "
                      "https://api.x.com/v1?page=1 failed")
    two = fingerprint("Connection to broker-7.prod.example.com/192.168.0.9:9093 for s3://z/y.parquet via "
                      "https://api.y.io/v2 failed")
    assert one == two


def test_quoted_values_do_not_change_it():
    assert fingerprint("KeyError: 'region'") == fingerprint("KeyError: 'country'")


def test_the_task_wrapper_does_not_change_it():
    inner = "Cluster 0612-1 is in unexpected state Terminated: COMMUNICATION_LOST(CLOUD_FAILURE)"
    assert fingerprint(f"Task load failed with message: {inner}") == fingerprint(f"Task ingest failed with message: {inner}")


def test_a_different_exception_changes_it():
    assert fingerprint("boom", exception="java.lang.OutOfMemoryError") != fingerprint("boom", exception="java.io.IOException")


def test_only_the_simple_exception_name_counts():
    assert fingerprint("x", exception="java.lang.OutOfMemoryError") == fingerprint("x", exception="OutOfMemoryError")


def test_a_different_error_class_changes_it():
    assert fingerprint("x", error_class="TABLE_OR_VIEW_NOT_FOUND") != fingerprint("x", error_class="PATH_NOT_FOUND")


def test_a_different_code_changes_it():
    assert fingerprint("", code="DRIVER_UNREACHABLE") != fingerprint("", code="SPOT_INSTANCE_TERMINATION")


def test_different_wording_of_the_root_cause_changes_it():
    assert fingerprint("Connection refused") != fingerprint("Connection reset by peer")


def test_normalize_replaces_values_with_placeholders():
    assert normalize("Lost task 40.3 in stage 18.0 (TID 955) on 10.139.64.51") == \
        "lost task <n> in stage <n> (tid <n>) on <ip>"


def test_normalize_collapses_whitespace_and_case():
    assert normalize("  Java   HEAP\n\tspace ") == "java heap space"


def test_normalize_is_bounded_on_huge_input():
    assert len(normalize("word " * 1_000_000)) < 30_000
