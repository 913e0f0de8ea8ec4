"""Telemetry: a log line's dimensions and the agent's metrics reach the OpenTelemetry exporters; no secret does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from localdev.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def _probe(connection_string: str | None) -> dict:
    args = [sys.executable, "-m", "tests.integration.telemetry_probe"] + ([connection_string] if connection_string else [])
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True, timeout=60)
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def exported() -> dict:
    # A closed loopback port stands in for the ingestion endpoint: the Azure exporter fails quietly there.
    return _probe(f"InstrumentationKey=00000000-0000-0000-0000-000000000000;"
                  f"IngestionEndpoint=http://127.0.0.1:{free_port()}/")


def test_a_log_records_custom_dimensions_reach_the_exporter(exported):
    (line,) = [log for log in exported["logs"] if log["body"].startswith("decided")]
    assert line["attributes"] == {"workspace_id": "ws", "job_id": 7, "run_id": 42, "decision_key": "ws:42:0",
                                  "category": "network", "action": "RETRY", "source": "llm"}


def test_no_secret_reaches_the_exporter(exported):
    from tests.integration.telemetry_probe import PLANTED

    assert PLANTED not in json.dumps(exported)
    assert "***" in exported["logs"][0]["body"]


def test_the_agents_metrics_are_recorded(exported):
    metrics = exported["metrics"]
    assert metrics["agent.decisions"] == 1
    assert metrics["agent.reruns"] == 1
    assert metrics["agent.llm.tokens"] == 900 + 120
    assert metrics["agent.time_to_action"] == pytest.approx(3.0)
    assert metrics["agent.emails"] == 3  # 2 sent + 1 failed, told apart by the "result" attribute
    assert metrics["agent.poison"] == 1


def test_without_a_connection_string_telemetry_is_off_and_records_nothing():
    result = _probe(None)
    assert result["on"] is False
    assert result["logs"] == [] and result["metrics"] == {}
