"""The report: figures from verified labels only, recommendations backed by numbers, a page with no script."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from shared.decision import Analysis, DecisionRecord
from shared.report import Verdict, build_report
from shared.report.figures import compute
from shared.report.recommend import THRESHOLDS, recommend
from shared.report.sources import page_request, parse_window
from shared.taxonomy import Action, Category

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
SINCE, UNTIL = T0 - timedelta(days=1), T0 + timedelta(days=7)


def rec(n: int, category: Category = Category.NETWORK, action: Action = Action.RETRY, *, outcome: str = "not_applicable",
        job: str = "nightly", rule: str | None = "net.refused", confidence: float = 0.9, source: str = "rules",
        seconds: float = 4.0, fingerprint: str = "fp-net", day: int = 0, **more) -> DecisionRecord:
    received = T0 + timedelta(days=day, minutes=n)
    return DecisionRecord(
        key=f"ws:{n}:0", workspace_id="ws", job_id=n, job_name=job, run_id=n, chain_id=f"ws:{n}", category=category,
        action=action, outcome=outcome, rule_id=rule, confidence=confidence, fingerprint=fingerprint,
        analysis=Analysis(source=source, **more.pop("analysis", {})), received_at=received,
        decided_at=received + timedelta(seconds=seconds),
        repair_id=100 + n if action in (Action.RETRY, Action.RETRY_WITH_NEW_PARAMS) else None, **more)


def figures(records, verdicts=()):
    return compute(records, verdicts, since=SINCE, until=UNTIL, unsure_below=0.75)


def test_decisions_outside_the_window_are_not_counted():
    fig = compute([rec(1), rec(2, day=30)], [], since=SINCE, until=UNTIL, unsure_below=0.75)
    assert fig.decisions == 1


def test_mix_by_action_category_and_source():
    fig = figures([rec(1), rec(2), rec(3, Category.CODE, Action.SEND_EMAIL),
                   rec(4, Category.CODE, Action.SEND_EMAIL, source="llm"), rec(5, rule="learned:abc")])
    assert fig.by_action == {"RETRY": 3, "SEND_EMAIL": 2}
    assert fig.by_category == {"network": 3, "code": 2}
    assert fig.by_source == {"rules": 3, "llm": 1, "learned_rule": 1}


def test_accuracy_counts_only_verified_decisions():
    records = [rec(1, outcome="succeeded", outcome_verdict="confirmed"),
               rec(2, outcome="failed", outcome_verdict="refuted"),
               rec(5, outcome="failed", outcome_verdict="inconclusive"),  # failed differently: says nothing
               rec(3, outcome="pending"), rec(4, Category.CODE, Action.SEND_EMAIL)]
    verdicts = [Verdict(decision_key="ws:4:0", correct=False, category="data", person="a@x"),
                Verdict(decision_key="ws:1:0", correct=True, person="a@x")]
    fig = figures(records, verdicts)
    assert (fig.outcomes.verified, fig.outcomes.correct) == (2, 1)
    assert (fig.feedback.verified, fig.feedback.correct) == (2, 1)
    assert fig.feedback_by_category["code"].correct == 0
    assert fig.corrections[0].decided == "code" and fig.corrections[0].corrected_to == "data"


def test_one_person_answering_twice_counts_once_with_their_latest_word():
    verdicts = [Verdict(decision_key="ws:1:0", correct=False, person="a@x"),
                Verdict(decision_key="ws:1:0", correct=True, person="a@x"),
                Verdict(decision_key="ws:1:0", correct=True, person="b@x")]
    fig = figures([rec(1)], verdicts)
    assert (fig.feedback.verified, fig.feedback.correct) == (2, 2)


def test_feedback_rows_of_the_learning_loop_become_verdicts_within_the_window():
    from shared.learning.model import Feedback
    from shared.report.sources import verdicts

    rows = [Feedback(decision_key="ws:1:0", correct=False, category=Category.DATA, by="ana", via="link", at=T0),
            Feedback(decision_key="ws:2:0", correct=True, by="bo", via="api", at=SINCE - timedelta(days=1))]
    (verdict,) = verdicts(rows, SINCE)
    assert (verdict.decision_key, verdict.correct, verdict.category, verdict.person) == ("ws:1:0", False, "data", "ana")


def test_retry_and_resize_success_rates():
    records = [rec(1, outcome="succeeded"), rec(2, outcome="failed"), rec(3, outcome="pending"),
               rec(4, Category.RESOURCE, Action.RETRY_WITH_NEW_PARAMS, outcome="succeeded")]
    fig = figures(records)
    assert (fig.retries.started, fig.retries.succeeded, fig.retries.failed, fig.retries.pending) == (3, 1, 1, 1)
    assert fig.retries.success_rate == 0.5
    assert (fig.resizes.started, fig.resizes.succeeded) == (1, 1)


def test_observe_mode_decisions_are_not_reruns():
    fig = figures([rec(1, mode="observe", outcome="not_applicable")])
    assert fig.retries.started == 0


def test_llm_use_and_cost():
    fig = figures([rec(1, source="llm", analysis={"prompt_tokens": 1000, "completion_tokens": 200, "cost_usd": 0.002}),
                   rec(2, source="llm_cache"), rec(3, source="rules_fallback")])
    assert (fig.llm.calls, fig.llm.cache_hits, fig.llm.fallbacks) == (1, 1, 1)
    assert (fig.llm.prompt_tokens, fig.llm.completion_tokens, fig.llm.cost_usd) == (1000, 200, 0.002)


def test_time_to_action_percentiles():
    fig = figures([rec(i, seconds=float(i)) for i in range(1, 101)])
    assert fig.time_to_action_p50 == pytest.approx(50.5)
    assert fig.time_to_action_p95 == pytest.approx(95.05)


def test_unmatched_failures_are_grouped_by_fingerprint_with_the_llms_guess():
    records = [rec(i, Category.UNKNOWN, Action.SEND_EMAIL, rule=None, fingerprint="fp-x",
                   analysis={"llm_category": "network"}) for i in range(3)]
    records.append(rec(9, confidence=0.5, fingerprint="fp-y"))  # a rule matched, but below the bar
    records.append(rec(10))  # sure: not material for a new rule
    fig = figures(records)
    assert [(u.fingerprint, u.count, u.llm_category) for u in fig.unmatched] == [("fp-x", 3, "network"),
                                                                                ("fp-y", 1, None)]


def test_weak_retries_recommend_a_lower_budget_with_their_numbers():
    records = [rec(i, Category.INFRASTRUCTURE, outcome="succeeded" if i < 2 else "failed", job="ingest")
               for i in range(10)]
    (advice,) = [r for r in recommend(figures(records), max_retries=3) if r.kind == "retry_budget"]
    assert advice.text.startswith("Infrastructure retries succeeded 2 of 10 times")
    assert "MAX_RETRIES=1 for job ingest" in advice.text
    assert advice.numbers["succeeded"] == 2


def test_too_few_reruns_recommend_nothing():
    count = THRESHOLDS["min_reruns"] - 1
    records = [rec(i, Category.INFRASTRUCTURE, outcome="failed") for i in range(count)]
    assert [r for r in recommend(figures(records), max_retries=3) if r.kind == "retry_budget"] == []


def test_repeated_corrections_ask_to_review_the_rule():
    records = [rec(i, Category.TIMEOUT, rule="timeout.read") for i in range(4)]
    verdicts = [Verdict(decision_key=f"ws:{i}:0", correct=False, category="network", person="p") for i in range(4)]
    (advice,) = [r for r in recommend(figures(records, verdicts), max_retries=3) if r.kind == "rule_review"]
    assert advice.text == "Category timeout was corrected to network 4 times: review rule timeout.read."


def test_the_page_has_no_script_no_external_resource_and_escapes_what_it_shows():
    hostile = '<script>alert(1)</script><img src="https://evil.example/x.png">'
    records = [rec(i, Category.UNKNOWN, Action.SEND_EMAIL, rule=None, job=hostile, excerpt=hostile + " token dapi"
                   + "0123456789abcdef" * 2) for i in range(3)]
    html = build_report(lambda since: records, lambda since: [], since=SINCE, until=UNTIL, unsure_below=0.75,
                        max_retries=3).to_html()
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html
    assert "dapi0123456789abcdef" not in html
    assert not re.search(r"""\s(src|href|action)\s*=\s*["']""", html)  # nothing is loaded or linked
    assert "<svg" in html


def test_json_round_trips_and_carries_rates():
    data = json.loads(build_report(lambda since: [rec(1, outcome="succeeded")], lambda since: [], since=SINCE,
                                   until=UNTIL, unsure_below=0.75, max_retries=3).to_json())
    assert data["decisions"] == 1 and data["rates"]["retry_success"] == 1.0


@pytest.mark.parametrize("text", ["7", "d", "0d", "-1d", "7w", "1.5h", ""])
def test_a_window_that_is_not_a_span_is_refused(text):
    with pytest.raises(ValueError, match="30m, 24h or 7d"):
        parse_window(text)


def test_the_http_page_refuses_bad_queries_with_400():
    def build(since, until):
        raise AssertionError("not reached")

    assert page_request({"since": "forever"}, now=UNTIL, build=build)[0] == 400
    assert page_request({"since": "365d"}, now=UNTIL, build=build)[0] == 400
    assert page_request({"format": "pdf"}, now=UNTIL, build=build)[0] == 400


def test_the_budget_advice_names_the_job_that_failed_its_reruns_in_that_category():
    records = [rec(i, Category.INFRASTRUCTURE, outcome="failed", job="ingest") for i in range(6)]
    records += [rec(10 + i, Category.INFRASTRUCTURE, outcome="succeeded", job="report") for i in range(2)]
    records += [rec(20 + i, Category.NETWORK, outcome="failed", job="other") for i in range(9)]  # another category
    advice = [r for r in recommend(figures(records), max_retries=3) if r.kind == "retry_budget"]
    infra = next(a for a in advice if a.numbers["category"] == "infrastructure")
    assert "for job ingest" in infra.text
