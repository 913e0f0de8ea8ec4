"""Properties over arbitrary input: classify never raises and always answers in the taxonomy."""

from hypothesis import HealthCheck, given, settings, strategies as st

from shared.classify import FailureSignals, classify
from shared.taxonomy import FIRST_ACTION, Category

FRAGMENTS = st.sampled_from([
    "Caused by: ", "Traceback (most recent call last):\n", '  File "<command-1>", line 3, in <module>\n', "\tat a.B.c(B.java:1)\n",
    "[TABLE_OR_VIEW_NOT_FOUND] ", "SQLSTATE: 42P01", "java.lang.OutOfMemoryError: ", "(", ")", "[", "]", ": ", "\n",
    "The above exception was the direct cause of the following exception:\n", "KeyError: 'x'", "CODE_X(CLIENT_ERROR)",
    "'C': '40001'", "Connection refused", "quota", "429", "$", ".", "_", "İ", "\x00",
])
STATES = st.one_of(st.none(), st.sampled_from(["FAILED", "CANCELED", "TIMEDOUT", "INTERNAL_ERROR", "", "weird"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=2000), result_state=STATES, code=st.one_of(st.none(), st.text(max_size=40)))
def test_classify_never_raises_on_arbitrary_text(text, result_state, code):
    result = classify(FailureSignals(text=text, result_state=result_state, termination_code=code,
                                     cluster_reason_code=code))
    assert result.category in set(Category)
    assert result.action is FIRST_ACTION[result.category]
    assert 0.0 <= result.confidence <= 1.0
    assert len(result.excerpt) <= 2000


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(FRAGMENTS, max_size=40))
def test_classify_never_raises_on_trace_shaped_text(parts):
    result = classify(FailureSignals(text="".join(parts)))
    assert result.category in set(Category)
    assert len(result.fingerprint) == 16
