"""The Functions stay thin, cheap to import, and match host.json."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_function_app_loads_no_openai_key_vault_or_acs_module():
    code = (
        "import sys, function_app; "
        "heavy = [m for m in sys.modules if m.split('.')[0] == 'openai' or m.startswith(('azure.keyvault', "
        "'azure.communication', 'azure.identity', 'azure.data.tables', 'azure.storage.queue', 'azure.monitor', "
        "'opentelemetry'))]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_host_json_max_dequeue_count_is_the_one_the_runtime_assumes():
    from shared.runtime import MAX_DEQUEUE_COUNT

    host = json.loads((ROOT / "host.json").read_text())
    assert host["extensions"]["queues"]["maxDequeueCount"] == MAX_DEQUEUE_COUNT


def test_the_functions_are_registered_with_their_triggers():
    import importlib

    import function_app

    app = importlib.reload(function_app).app
    triggers = {f.get_function_name(): type(f.get_trigger()).__name__ for f in app.get_functions()}
    assert triggers == {"databricks_webhook": "HttpTrigger", "process_failure": "QueueTrigger",
                        "refine_unsure_failure": "QueueTrigger",
                        "poll_failures": "TimerTrigger", "decision_feedback": "HttpTrigger",
                        "feedback_link": "HttpTrigger", "report": "HttpTrigger"}


def test_a_misconfigured_app_says_so_in_the_log_when_it_loads():
    code = ("import logging, sys; logging.basicConfig(stream=sys.stdout, level=logging.ERROR); import function_app")
    env = {"PATH": "/usr/bin:/bin", "DATABRICKS_HOST": "https://adb-1.2.azuredatabricks.net",
           "AzureWebJobsStorage": "UseDevelopmentStorage=true", "MAX_RETRIES": "many"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, env=env)
    assert "the agent's settings have problems" in out.stdout and "MAX_RETRIES" in out.stdout


def test_a_well_configured_app_loads_without_a_settings_error():
    code = ("import logging, sys; logging.basicConfig(stream=sys.stdout, level=logging.ERROR); import function_app")
    env = {"PATH": "/usr/bin:/bin", "DATABRICKS_HOST": "https://adb-1.2.azuredatabricks.net",
           "DATABRICKS_TOKEN": "dapi-not-a-real-token-0000", "AzureWebJobsStorage": "UseDevelopmentStorage=true",
           "WEBHOOK_USERNAME": "databricks", "WEBHOOK_PASSWORD": "a-long-enough-password"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, env=env)
    assert "settings have problems" not in out.stdout, out.stdout
