"""When the analyzer asks the LLM, and what it records when it did not, could not or may not."""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from shared.llm import Analyzer, build_analyzer
from shared.llm.budget import DailyBudget
from shared.llm.cache import AnswerCache
from shared.llm.client import Completion
from shared.llm.cost import Prices
from shared.llm.exceptions import LLMTimeout
from shared.llm.guard import OverridePolicy
from shared.llm.schema import FailureAnalysis
from shared.resize import ResizeBounds
from shared.settings import Settings
from shared.taxonomy import Action, Category
from tests.fixtures.openai import ANSWER_CODE, classification, signals

ROOT = Path(__file__).resolve().parents[2]


class StubClient:
    """Answers with `answer`, or raises `error`; counts calls."""

    def __init__(self, answer=ANSWER_CODE, error: Exception | None = None) -> None:
        self.answer = FailureAnalysis.model_validate(answer)
        self.error = error
        self.calls: list[list[dict]] = []

    def complete(self, messages):
        self.calls.append(messages)
        if self.error is not None:
            raise self.error
        return Completion(self.answer, prompt_tokens=1000, completion_tokens=100, model="gpt-4o-mini-2024-07-18")


def analyzer(client=None, *, ask_for_emails=False, max_calls=100) -> Analyzer:
    return Analyzer(
        client=client or StubClient(),
        model="gpt-4o-mini",
        threshold=0.75,
        policy=OverridePolicy("unsure", 0.75),
        bounds=ResizeBounds([["Standard_DS3_v2", "Standard_DS4_v2"]], 16, frozenset()),
        prices=Prices(0.0025, 0.01),
        cache=AnswerCache(None, ttl=timedelta(hours=1)),
        budget=DailyBudget(None, max_calls=max_calls, max_cost_usd=0),
        max_prompt_tokens=1800,
        ask_for_emails=ask_for_emails,
    )


def test_without_an_endpoint_there_is_no_analyzer_and_the_rules_decide_alone():
    assert build_analyzer(Settings(azure_openai_endpoint=None, azure_openai_deployment=None)) is None
    from shared.wiring import build_analyzer as wiring_build

    assert wiring_build(Settings(azure_openai_endpoint=None, azure_openai_deployment=None), None, None) is None


def test_rules_above_the_threshold_are_not_sent_to_the_llm():
    client = StubClient()
    rules = classification(category=Category.CODE, confidence=0.9)
    result, analysis = analyzer(client).refine(signals(), rules, {})
    assert client.calls == []
    assert result == rules and analysis.source == "rules"


def test_rules_below_the_threshold_are_sent_to_the_llm():
    client = StubClient()
    result, analysis = analyzer(client).refine(signals(), classification(category=Category.DATA, confidence=0.6), {})
    assert len(client.calls) == 1
    assert analysis.source == "llm" and result.category is Category.CODE


def test_an_unknown_category_is_sent_to_the_llm_whatever_its_confidence():
    client = StubClient()
    analyzer(client).refine(signals(), classification(confidence=0.99), {})
    assert len(client.calls) == 1


def test_with_ask_for_emails_a_confident_email_gets_a_written_cause_but_keeps_the_rules_verdict():
    client = StubClient({**ANSWER_CODE, "category": "data", "confidence": 0.99})
    rules = classification(category=Category.PERMISSION, confidence=0.95)
    result, analysis = analyzer(client, ask_for_emails=True).refine(signals(), rules, {})
    assert len(client.calls) == 1
    assert result == rules
    assert analysis.root_cause and analysis.source == "llm"
    assert analysis.llm_category == "data"


def test_with_ask_for_emails_a_confident_retry_is_still_not_sent():
    client = StubClient()
    rules = classification(category=Category.NETWORK, confidence=0.95)
    analyzer(client, ask_for_emails=True).refine(signals(), rules, {})
    assert client.calls == []


def test_tokens_and_estimated_cost_are_recorded():
    _, analysis = analyzer().refine(signals(), classification(), {})
    assert (analysis.prompt_tokens, analysis.completion_tokens) == (1000, 100)
    assert analysis.cost_usd == 0.0035
    assert analysis.model == "gpt-4o-mini-2024-07-18" and analysis.prompt_version.startswith("analyze_v2-")


def test_an_llm_failure_leaves_the_rules_verdict_and_says_why():
    rules = classification()
    result, analysis = analyzer(StubClient(error=LLMTimeout("no answer within 20 s"))).refine(signals(), rules, {})
    assert result == rules
    assert analysis.source == "rules_fallback" and analysis.fallback_reason == "no answer within 20 s"


def test_an_unexpected_error_in_the_llm_step_never_stops_the_decision(caplog):
    rules = classification()
    with caplog.at_level(logging.ERROR, logger="shared.llm"):
        result, analysis = analyzer(StubClient(error=KeyError("bug"))).refine(signals(), rules, {})
    assert result == rules
    assert analysis.source == "rules_fallback" and analysis.fallback_reason == "internal error: KeyError"


def test_past_the_daily_budget_analysis_is_rules_only_with_a_warning(caplog):
    client = StubClient()
    a = analyzer(client, max_calls=1)
    a.refine(signals(), classification(fingerprint="one"), {})
    with caplog.at_level(logging.WARNING, logger="shared.llm.budget"):
        result, analysis = a.refine(signals(), classification(fingerprint="two"), {})
    assert len(client.calls) == 1
    assert analysis.source == "rules_fallback" and "daily LLM budget spent" in analysis.fallback_reason
    assert "budget spent" in caplog.text


def test_a_repeated_failure_is_answered_from_the_cache_at_no_cost():
    client = StubClient()
    a = analyzer(client)
    a.refine(signals(), classification(), {})
    result, analysis = a.refine(signals(), classification(), {})
    assert len(client.calls) == 1
    assert analysis.source == "llm_cache" and analysis.cost_usd == 0 and analysis.prompt_tokens == 0
    assert result.category is Category.CODE and result.action is Action.SEND_EMAIL


def test_the_same_error_on_another_table_is_not_answered_from_the_cache():
    client = StubClient()
    a = analyzer(client)
    missing = "[TABLE_OR_VIEW_NOT_FOUND] The table `main.{}` cannot be found. SQLSTATE: 42P01"
    a.refine(signals(), classification(fingerprint="same", excerpt=missing.format("sales")), {})
    a.refine(signals(), classification(fingerprint="same", excerpt=missing.format("orders")), {})
    assert len(client.calls) == 2


def test_importing_and_building_the_analyzer_does_not_import_openai():
    code = (
        "import sys\n"
        "from shared.settings import Settings\n"
        "from shared.llm import build_analyzer\n"
        "a = build_analyzer(Settings(azure_openai_endpoint='http://127.0.0.1:9', azure_openai_deployment='d',"
        " azure_openai_api_key='k'))\n"
        "assert a is not None\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'openai'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_each_path_records_what_the_llm_step_did_as_a_typed_outcome():
    sure = classification(category=Category.CODE, confidence=0.9)
    assert analyzer().refine(signals(), sure, {})[1].llm_outcome == "not_asked"
    override = analyzer().refine(signals(), classification(category=Category.DATA, confidence=0.6), {})[1]
    assert override.llm_outcome == "override"
    failed = analyzer(StubClient(error=LLMTimeout("slow"))).refine(signals(), classification(), {})[1]
    assert failed.llm_outcome == "failed"
    spent = analyzer(max_calls=1)
    spent.refine(signals(), classification(fingerprint="a"), {})
    second = spent.refine(signals(), classification(fingerprint="b", excerpt="other"), {})[1]
    assert second.llm_outcome == "budget_spent"


def test_the_analyzer_lives_in_its_own_module_and_never_imports_wiring():
    import ast

    package = (ROOT / "shared" / "llm" / "__init__.py").read_text(encoding="utf-8")
    assert "class Analyzer" not in package and len(package.splitlines()) < 40
    for path in (ROOT / "shared" / "llm").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert "shared.wiring" not in imported, path.name


def test_injected_spark_conf_values_outside_their_bounds_never_reach_the_decision():
    from dataclasses import replace as dc_replace

    from tests.fixtures.openai import ANSWER_RESOURCE

    injected = {**ANSWER_RESOURCE, "confidence": 0.99, "suggested_parameters": {
        "node_type_id": None, "num_workers": None, "autoscale_max_workers": None,
        "spark_conf": [{"key": "spark.sql.shuffle.partitions", "value": "2147483647"},
                       {"key": "spark.sql.autoBroadcastJoinThreshold", "value": "1t"},
                       {"key": "spark.sql.adaptive.enabled", "value": "true"}]}}
    a = analyzer(StubClient(injected))
    a.bounds = dc_replace(a.bounds, allowed_spark_conf=frozenset(
        {"spark.sql.shuffle.partitions", "spark.sql.autoBroadcastJoinThreshold", "spark.sql.adaptive.enabled"}))
    result, analysis = a.refine(signals(), classification(), {"cluster": {"node_type_id": "Standard_DS3_v2",
                                                                          "num_workers": 2}})
    assert result.category is Category.RESOURCE
    assert analysis.suggested_parameters == {"spark_conf": {"spark.sql.adaptive.enabled": "true"}}
    assert sum("outside" in note for note in analysis.guard_notes) == 2
