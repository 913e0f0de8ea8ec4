"""What the emails say: subjects that scan, bodies that escape run text, and nothing secret."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from shared.decision import Analysis, FailedTask
from shared.notify import NotificationKind, kind_for
from shared.notify.render import MAX_SUBJECT, feedback_links, headline, render, render_digest, subject
from shared.notify.sample import sample_outcome_record, sample_record
from shared.settings import Settings
from shared.taxonomy import Action, Category

SETTINGS = Settings(feedback_url="https://agent.example.com/api/feedback")


def rendered(action=Action.SEND_EMAIL, mode="act", settings=SETTINGS, **changes):
    record = sample_record(action, mode=mode)
    for name, value in changes.items():
        setattr(record, name, value)
    return render(record, kind_for(record), settings)


def test_the_diagnosis_subject_reads_like_the_issue_asks():
    assert rendered().subject == "[FAILED · permission] nightly_etl — PERMISSION_DENIED on main.sales"


def test_the_escalation_subject_says_how_many_attempts():
    subject_line = rendered(Action.ESCALATE).subject
    assert subject_line.startswith("[ESCALATED · resource] nightly_etl — still failing after 4 attempts")


def test_an_escalation_before_the_budget_is_spent_does_not_claim_it_was():
    email = rendered(Action.ESCALATE, attempt=1, reason="critical failure")
    assert "still failing" not in email.subject
    assert "retry budget" not in email.text


def test_the_retry_subject_says_which_rerun_and_that_the_cluster_grew():
    email = rendered(Action.RETRY_WITH_NEW_PARAMS)
    assert email.subject.startswith("[RETRIED · resource] nightly_etl — rerun 1 of 3 on a larger cluster: ")


def test_the_observe_subject_says_what_would_have_happened():
    assert rendered(Action.RETRY, mode="observe").subject.startswith("[OBSERVE · would retry · resource] nightly_etl")


def test_subjects_are_one_bounded_line_whatever_the_error():
    record = sample_record(Action.SEND_EMAIL)
    record.failed_tasks[0].error = "Boom\r\nBcc: victim@example.com " + "x" * 500
    text = subject(record, NotificationKind.DIAGNOSIS)
    assert "\n" not in text and "\r" not in text
    assert len(text) <= MAX_SUBJECT


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("[PERMISSION_DENIED] User does not have SELECT on Table 'main.sales'.", "PERMISSION_DENIED on main.sales"),
        ("[TABLE_OR_VIEW_NOT_FOUND] The table or view `cat`.`sch`.`orders` cannot be found.",
         "TABLE_OR_VIEW_NOT_FOUND on cat.sch.orders"),
        ("java.lang.OutOfMemoryError: Java heap space", "OutOfMemoryError: Java heap space"),
        ("Cluster terminated unexpectedly", "Cluster terminated unexpectedly"),
        ("[ERROR] [DELTA_CONCURRENT_APPEND] Files were added to the table 'lake.events'",
         "DELTA_CONCURRENT_APPEND on lake.events"),
    ],
)
def test_headline_names_the_error_class_and_the_object(error, expected):
    record = sample_record(Action.SEND_EMAIL)
    record.failed_tasks = [FailedTask(task_key="t", run_id=1, error=error)]
    assert headline(record) == expected


def test_html_escapes_what_a_run_printed():
    html = rendered().html
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;printed by a notebook&#39;)&lt;/script&gt;" in html
    assert "amount &lt; 0 &amp; region" in html


def test_plain_text_shows_the_error_as_it_was():
    text = rendered().text
    assert "<script>alert('printed by a notebook')</script>" in text
    assert "amount < 0 & region" in text


def test_the_body_carries_everything_a_reader_needs():
    record = sample_record(Action.SEND_EMAIL)
    email = render(record, NotificationKind.DIAGNOSIS, SETTINGS)
    for expected in ["nightly_etl", "job 42", record.run_page_url, "load_silver", "2025-11-24 09:41 UTC",
                     "permission", "GRANT SELECT ON TABLE main.sales", "attempt 1 of 4",
                     "error class [PERMISSION_DENIED]", "emailed the job", "PERMISSION_DENIED"]:
        assert expected in email.text, expected
    assert record.analysis.root_cause in email.text
    assert 'href="https://adb-1234567890123456.7.azuredatabricks.net/' in email.html


def test_a_retry_email_says_what_changed_on_the_cluster():
    email = rendered(Action.RETRY_WITH_NEW_PARAMS)
    assert "workers 4 → 8" in email.text
    assert "node Standard_DS3_v2 → Standard_DS4_v2" in email.html
    assert "etl_cluster" in email.html


def test_an_observe_email_says_nothing_was_changed():
    email = rendered(Action.RETRY_WITH_NEW_PARAMS, mode="observe")
    text = " ".join(email.text.split())
    assert "observe mode" in text
    assert "changed nothing in Databricks" in text
    assert "would have resized job cluster" in text


def test_without_an_llm_answer_the_category_advice_is_shown_and_labelled():
    email = rendered(analysis=Analysis())
    assert "Grant the principal the job runs as" in email.text
    assert "general advice for this kind of failure" in email.text
    assert "AI analysis" not in email.text


def test_feedback_links_carry_the_decision_key_and_a_verdict():
    email = rendered()
    assert "https://agent.example.com/api/feedback?key=default%3A911%3A0%3Asample&amp;verdict=right" in email.html
    assert "verdict=wrong" in email.text


def test_no_feedback_section_without_a_feedback_url():
    email = rendered(settings=Settings())
    assert "right call" not in email.text and "right call" not in email.html


def test_feedback_url_may_place_the_key_itself():
    links = feedback_links("https://x.example.com/d/{key}/rate", "ws:1:0")
    assert links["page"] == "https://x.example.com/d/ws%3A1%3A0/rate"
    assert links["right"] == "https://x.example.com/d/ws%3A1%3A0/rate?verdict=right"


def test_only_http_links_are_rendered():
    email = rendered(run_page_url="javascript:alert(1)")
    assert "javascript:" not in email.html


def test_secrets_in_run_text_are_masked():
    token = "dapi0123456789abcdef0123456789abcdef"
    email = rendered(excerpt=f"requests failed with Authorization: Bearer {token}\npassword=hunter2hunter2",
                     evidence=[f"token={token}"])
    for body in (email.text, email.html):
        assert token not in body
        assert "hunter2hunter2" not in body


def test_a_long_excerpt_is_cut_and_says_so():
    email = rendered(excerpt="\n".join(f"line {i} of the stack trace" for i in range(500)))
    assert "line 29 of the stack trace" in email.text
    assert "line 30 of the stack trace" not in email.text
    assert "470 more lines on the run page" in email.text


def test_an_unknown_failure_with_no_text_still_renders():
    email = rendered(failed_tasks=[], evidence=[], excerpt="", reason="", analysis=Analysis(),
                     category=Category.UNKNOWN, job_name=None)
    assert email.subject.startswith("[FAILED · unknown] job 42 — ")
    assert "No rule recognised this failure" in email.text


def test_the_digest_groups_by_failure_largest_first():
    items = [
        {"id": f"n{i}", "kind": "retry", "job": f"job_{i}", "run_id": i, "run_url": None, "category": "network",
         "action": "RETRY", "headline": "ConnectException: refused", "fingerprint": "fp-net", "when": f"t{i}"}
        for i in range(5)
    ] + [{"id": "p", "kind": "diagnosis", "job": "etl", "run_id": 9, "category": "permission",
          "headline": "PERMISSION_DENIED on main.sales & <b>", "fingerprint": "fp-perm", "when": "t9"}]
    email = render_digest("ops@example.com", items, datetime(2025, 11, 24, 9, tzinfo=timezone.utc), Settings())
    assert email.subject == ("[DIGEST] 6 job failure notices in the hour from 09:00 UTC — 2 distinct failures")
    assert email.text.index("5 x ConnectException") < email.text.index("1 x PERMISSION_DENIED")
    assert "&amp; &lt;b&gt;" in email.html
    assert re.search(r"2025-11-24 09:00–10:00 UTC", email.text)


def test_without_an_llm_answer_what_went_wrong_quotes_the_deciding_error_line():
    email = rendered(analysis=Analysis(), reason="permission failure needs a human: a retry cannot fix it",
                     evidence=["[PERMISSION_DENIED] User does not have USE SCHEMA on Schema 'main.sales'",
                               "[PERMISSION_DENIED] User does not have USE SCHEMA"])
    what_went_wrong = email.text.split("WHAT WENT WRONG", 1)[1].split("\n\n", 1)[0]
    assert "USE SCHEMA on Schema 'main.sales'" in what_went_wrong
    assert "a retry cannot fix it" not in what_went_wrong


# --- the outcome of a resized rerun -------------------------------------------------------------------------
def outcome_email(outcome="succeeded", kept=None, **resize_changes):
    record = sample_outcome_record(outcome, kept=kept)
    for name, value in resize_changes.items():
        setattr(record.resize, name, value)
    return render(record, NotificationKind.OUTCOME, SETTINGS)


def flat(text):
    return " ".join(text.split())


def test_the_outcome_subject_says_which_size_worked_and_that_it_was_reverted():
    assert outcome_email().subject == (
        "[RESOLVED · resource] nightly_etl — succeeded on Standard_DS4_v2 (job cluster reverted)"
    )


def test_a_reverted_outcome_names_both_sizes_and_asks_to_make_the_change_permanent():
    email = outcome_email()
    text = flat(email.text)
    assert "Worked: Standard_DS4_v2, 8 workers" in text
    assert "Original: Standard_DS3_v2, 4 workers" in text
    assert "node Standard_DS3_v2 → Standard_DS4_v2" in text
    assert ("The next scheduled run will use the old size and may fail the same way: make the change permanent "
            "in the job's settings.") in text
    assert "Standard_DS4_v2, 8 workers" in email.html
    assert "make the change permanent in the job&#39;s settings" in email.html
    assert "Rerun succeeded" in email.html


def test_a_kept_outcome_says_the_larger_size_stays_and_why():
    email = outcome_email(kept="setting")
    assert email.subject.endswith("succeeded on Standard_DS4_v2 (larger size kept)")
    text = flat(email.text)
    assert "keeps the larger size (RESIZE_REVERT is false)" in text
    assert "the job's next runs use it too" in text
    assert "will use the old size" not in text


def test_a_cluster_someone_changed_since_is_reported_as_left_alone():
    email = outcome_email(kept="changed")
    assert "(job cluster changed by someone else, left as is)" in email.subject
    assert "someone changed it after the resize" in flat(email.text)
    assert "reverted" not in flat(email.text).split("THE JOB CLUSTER NOW")[1].split("WHAT THE AGENT DID")[0]


def test_a_rerun_that_failed_again_says_so_and_leaves_the_cluster_to_the_next_decision():
    email = outcome_email("failed")
    assert email.subject == (
        "[FAILED AGAIN · resource] nightly_etl — failed again on Standard_DS4_v2 (the agent decides next)"
    )
    text = flat(email.text)
    assert "Tried: Standard_DS4_v2, 8 workers" in text and "Worked:" not in text
    assert "until the agent's next decision on this chain" in text
    assert "make the change permanent" not in text
    assert "Failed again" in email.html


def test_a_rerun_that_failed_again_reads_as_superseded_not_reverted_even_if_the_record_says_reverted():
    email = outcome_email("failed", reverted=True)  # a later resize of the chain took over this one
    assert "(the agent decides next)" in email.subject


def test_more_workers_without_a_new_node_type_is_named_by_its_worker_count():
    email = outcome_email(before={"node_type_id": "Standard_E32ds_v5", "num_workers": 4},
                          after={"node_type_id": "Standard_E32ds_v5", "num_workers": 8}, summary="workers 4 → 8")
    assert "succeeded on 8 workers (job cluster reverted)" in email.subject


def test_autoscale_and_single_node_sizes_read_plainly():
    email = outcome_email(before={"node_type_id": "Standard_DS3_v2", "num_workers": 0},
                          after={"node_type_id": "Standard_DS4_v2", "autoscale": {"min_workers": 2, "max_workers": 8}})
    text = flat(email.text)
    assert "Original: Standard_DS3_v2, single node" in text
    assert "Worked: Standard_DS4_v2, autoscale 2–8 workers" in text


def test_the_outcome_escapes_what_the_job_settings_hold():
    email = outcome_email(job_cluster_key="<b>etl</b>",
                          after={"node_type_id": "<script>x()</script>", "num_workers": 8})
    assert "<script>" not in email.html and "<b>etl</b>" not in email.html
    assert "&lt;script&gt;x()&lt;/script&gt;" in email.html and "&lt;b&gt;etl&lt;/b&gt;" in email.html
    assert "<script>x()</script>" in email.text
    assert "\n" not in email.subject and len(email.subject) <= MAX_SUBJECT


def test_the_outcome_leaves_the_excerpt_to_the_retry_notice():
    email = outcome_email()
    assert "ERROR EXCERPT" not in email.text
    assert "HashedRelation.scala" not in email.html

