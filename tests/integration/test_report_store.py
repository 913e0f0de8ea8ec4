"""`python -m shared report` over real Table Storage (Azurite): its figures are the store's own counts, and its
page renders in a real browser (headless Chromium) with its charts."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from datetime import timedelta

import pytest

from shared.__main__ import main
from shared.decision import Analysis, DecisionRecord, utcnow
from shared.store import TableDecisionStore, from_entity
from shared.taxonomy import Action, Category

MIX = [
    (Category.NETWORK, Action.RETRY, "succeeded"), (Category.NETWORK, Action.RETRY, "failed"),
    (Category.INFRASTRUCTURE, Action.RETRY, "pending"), (Category.RESOURCE, Action.RETRY_WITH_NEW_PARAMS, "succeeded"),
    (Category.CODE, Action.SEND_EMAIL, "not_applicable"), (Category.PERMISSION, Action.SEND_EMAIL, "not_applicable"),
    (Category.CANCELLED, Action.IGNORE, "not_applicable"), (Category.UNKNOWN, Action.SEND_EMAIL, "not_applicable"),
]


@pytest.fixture
def seeded(storage_connection_string, unique_name, monkeypatch):
    from azure.data.tables import TableServiceClient

    client = TableServiceClient.from_connection_string(storage_connection_string).create_table(unique_name)
    store, now = TableDecisionStore(client), utcnow()
    for i, (category, action, outcome) in enumerate(MIX * 3):
        received = now - timedelta(hours=i)
        store.save(DecisionRecord(
            key=f"ws:{1000 + i}:0", workspace_id="ws", job_id=i % 5, job_name=f"job-{i % 5}", run_id=1000 + i,
            chain_id=f"ws:{1000 + i}", category=category, action=action, outcome=outcome, status="done",
            rule_id=None if category == Category.UNKNOWN else f"rule.{category.value}", confidence=0.9,
            fingerprint=f"fp-{category.value}", repair_id=5000 + i if action in (Action.RETRY,
                                                                                 Action.RETRY_WITH_NEW_PARAMS) else None,
            analysis=Analysis(source="llm" if category == Category.UNKNOWN else "rules", prompt_tokens=800,
                              completion_tokens=100, cost_usd=0.001),
            received_at=received, decided_at=received + timedelta(seconds=2 + i), notifications=[f"n{i}"],
        ))
    store.save(DecisionRecord(key="ws:1:0", workspace_id="ws", run_id=1, chain_id="ws:1",  # outside a 7-day window
                              received_at=now - timedelta(days=20)))
    monkeypatch.setenv("AzureWebJobsStorage", storage_connection_string)
    monkeypatch.setenv("DATABRICKS_WORKSPACE_URL", "https://adb-1.2.azuredatabricks.net")
    monkeypatch.setenv("DECISIONS_TABLE", unique_name)
    from shared.learning.feedback import TableFeedbackStore
    from shared.learning.model import Feedback

    service = TableServiceClient.from_connection_string(storage_connection_string)
    feedback = TableFeedbackStore(service.create_table(unique_name + "fb"))
    feedback.put(Feedback(decision_key="ws:1004:0", correct=False, category=Category.DATA, by="ana@example.com",
                          via="link", at=now))
    feedback.put(Feedback(decision_key="ws:1000:0", correct=True, by="bo@example.com", via="api", at=now))
    monkeypatch.setenv("FEEDBACK_TABLE", unique_name + "fb")
    return client


def test_report_json_figures_equal_the_counts_taken_from_the_store(seeded, capsys):
    assert main(["report", "--since", "7d", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    week_ago = utcnow() - timedelta(days=7)
    rows = [from_entity(e) for e in seeded.list_entities()]
    in_window = [r for r in rows if r.received_at >= week_ago]
    assert figures["decisions"] == len(in_window) == len(MIX) * 3
    assert figures["by_action"] == dict(Counter(r.action.value for r in in_window))
    assert figures["by_category"] == dict(Counter(r.category.value for r in in_window))
    retried = [r for r in in_window if r.action == Action.RETRY]
    assert figures["retries"]["succeeded"] == sum(r.outcome == "succeeded" for r in retried)
    assert figures["retries"]["failed"] == sum(r.outcome == "failed" for r in retried)
    assert figures["emails"] == sum(len(r.notifications) for r in in_window)
    assert figures["llm"]["calls"] == sum(r.analysis.source == "llm" for r in in_window)
    assert figures["unmatched"][0]["fingerprint"] == "fp-unknown" and figures["unmatched"][0]["count"] == 3
    assert (figures["feedback"]["verified"], figures["feedback"]["correct"]) == (2, 1)
    assert figures["corrections"] == [{"rule_id": "rule.code", "decided": "code", "corrected_to": "data", "count": 1}]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium is not installed (.ci/run installs Debian's)")
def test_the_report_page_renders_in_headless_chromium_with_its_charts(seeded, tmp_path):
    page = tmp_path / "report.html"
    assert main(["report", "--since", "7d", "--html", str(page)]) == 0
    browser = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run([*browser, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=90,
                         check=True).stdout
    assert dom.count("<svg") >= 3 and "Recommendations" in dom and "Failures no rule was sure of" in dom
    shot = tmp_path / "report.png"
    subprocess.run([*browser, f"--screenshot={shot}", "--window-size=1280,1800", page.as_uri()],
                   capture_output=True, timeout=90, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def _verified_store(storage_connection_string, unique_name, monkeypatch, per_class: int):
    from azure.data.tables import TableServiceClient

    client = TableServiceClient.from_connection_string(storage_connection_string).create_table(unique_name)
    store, now = TableDecisionStore(client), utcnow()
    for i in range(per_class * 2):
        category = (Category.NETWORK, Category.RESOURCE)[i % 2]
        store.save(DecisionRecord(
            key=f"ws:{i}:0", workspace_id="ws", job_id=i, run_id=i, chain_id=f"ws:{i}", category=category,
            action=Action.RETRY if category == Category.NETWORK else Action.RETRY_WITH_NEW_PARAMS, outcome="succeeded",
            outcome_verdict="confirmed",
            fingerprint=f"fp-{i}", excerpt=f"failure {i}", received_at=now - timedelta(hours=i), repair_id=i))
    monkeypatch.setenv("AzureWebJobsStorage", storage_connection_string)
    monkeypatch.setenv("DATABRICKS_WORKSPACE_URL", "https://adb-1.2.azuredatabricks.net")
    monkeypatch.setenv("DECISIONS_TABLE", unique_name)


def test_finetune_prepare_refuses_a_thin_store_and_writes_nothing(storage_connection_string, unique_name, monkeypatch,
                                                                  tmp_path, capsys):
    _verified_store(storage_connection_string, unique_name, monkeypatch, per_class=3)
    assert main(["finetune", "prepare", "--out", str(tmp_path / "ft")]) == 1
    assert "6 verified examples (network 3, resource 3)" in capsys.readouterr().err
    assert not (tmp_path / "ft").exists()


def test_finetune_prepare_on_a_seeded_store_writes_valid_jsonl(storage_connection_string, unique_name, monkeypatch,
                                                               tmp_path, capsys):
    from shared.finetune.dataset import check_chat_jsonl

    _verified_store(storage_connection_string, unique_name, monkeypatch, per_class=15)
    assert main(["finetune", "prepare", "--out", str(tmp_path / "ft")]) == 0
    lines = (tmp_path / "ft" / "train.jsonl").read_text() + (tmp_path / "ft" / "validation.jsonl").read_text()
    assert check_chat_jsonl(lines) == [] and len(lines.splitlines()) == 30
    assert "network" in capsys.readouterr().out
