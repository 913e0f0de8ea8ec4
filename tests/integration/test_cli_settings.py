"""Every `python -m shared` command reads local.settings.json (or --settings FILE) as the Functions host would,
checks its settings before it starts and prints their problems in the doctor's format, never a traceback;
a pipe closed early ends it quietly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.__main__ import COMMANDS, main

ROOT = Path(__file__).resolve().parents[2]
BAD = {"MAX_RETRIES": "eleven", "POLL_SCHEDULE": "99 */5 * * * *"}


@pytest.fixture(autouse=True)
def own_directory_and_environment(tmp_path, monkeypatch):
    """Each test in an empty folder, and the process environment put back afterwards (the commands apply the
    file's Values to it, as the host does)."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.upper().startswith(("DATABRICKS_", "EMAIL_", "AZUREWEBJOBSSTORAGE", "MAX_RETRIES", "POLL_",
                                    "DECISIONS_TABLE", "KEY_VAULT_URL", "AZURE_OPENAI")):
            del os.environ[name]
    monkeypatch.chdir(tmp_path)
    yield
    os.environ.clear()
    os.environ.update(saved)


def write_settings(path: Path, values: dict[str, str]) -> Path:
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values}), encoding="utf-8")
    return path


def test_every_command_takes_settings(capsys):
    for name in COMMANDS:
        with pytest.raises(SystemExit):
            main([name, "--help"])
        assert "--settings" in capsys.readouterr().out, name


def test_decisions_reads_storage_from_local_settings_json(storage_connection_string, unique_name, capsys):
    write_settings(Path("local.settings.json"), {"AzureWebJobsStorage": storage_connection_string,
                                                  "DECISIONS_TABLE": unique_name})
    assert main(["decisions", "--since", "1h"]) == 0
    assert "(no decisions in that window)" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["decisions"], ["email-test", "--to", "a@example.com", "--dry-run"],
                                     ["llm-report"], ["classify", "--llm"]])
def test_bad_settings_stop_a_command_with_the_doctors_table_not_a_traceback(command, tmp_path, capsys):
    write_settings(tmp_path / "elsewhere.json", {"AzureWebJobsStorage": "UseDevelopmentStorage=true", **BAD})
    assert main([*command, "--settings", str(tmp_path / "elsewhere.json")]) == 2
    err = capsys.readouterr().err
    assert "settings from: " + str(tmp_path / "elsewhere.json") in err
    assert err.count("NOT READY") >= 2 and "setting MAX_RETRIES" in err and "second field '99'" in err
    assert "Traceback" not in err


def test_decisions_without_storage_names_the_setting():
    write_settings(Path("local.settings.json"), {"DATABRICKS_HOST": "https://adb-1.azuredatabricks.net"})
    result = subprocess.run([sys.executable, "-m", "shared", "decisions"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert result.returncode == 2
    assert "setting AzureWebJobsStorage" in result.stderr and "Traceback" not in result.stderr


def test_email_test_sends_with_the_files_transport(tmp_path, capsys):
    outbox = tmp_path / "mail"
    write_settings(Path("local.settings.json"), {"EMAIL_TRANSPORT": "file", "EMAIL_FILE_DIR": str(outbox),
                                                  "EMAIL_SENDER": "agent@example.com"})
    assert main(["email-test", "--to", "ops@example.com"]) == 0
    assert "transport: " in capsys.readouterr().out
    assert any(p.suffix == ".eml" for p in outbox.iterdir())


def test_the_environment_wins_over_the_file(tmp_path, capsys):
    write_settings(Path("local.settings.json"), {"EMAIL_TRANSPORT": "file", "EMAIL_FILE_DIR": str(tmp_path / "a"),
                                                  "EMAIL_SENDER": "agent@example.com"})
    os.environ["EMAIL_FILE_DIR"] = str(tmp_path / "b")
    assert main(["email-test", "--to", "ops@example.com"]) == 0
    assert (tmp_path / "b").is_dir() and not (tmp_path / "a").exists()


def test_a_command_that_reads_no_settings_runs_whatever_the_file_holds(capsys, monkeypatch):
    import io

    write_settings(Path("local.settings.json"), BAD)
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"id": "1", "text": "java.lang.OutOfMemoryError: Java heap space"}\n'))
    assert main(["classify"]) == 0
    assert '"category": "resource"' in capsys.readouterr().out


def test_an_unreadable_settings_file_is_one_line(capsys):
    Path("local.settings.json").write_text("{not json", encoding="utf-8")
    assert main(["decisions"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cannot read ") and "local.settings.json" in err and "Traceback" not in err


def test_a_pipe_closed_early_is_quiet(tmp_path):
    source = tmp_path / "failures.jsonl"
    source.write_text("".join(json.dumps({"id": str(i), "text": "java.lang.OutOfMemoryError: Java heap space"})
                              + "\n" for i in range(5000)), encoding="utf-8")
    with source.open("rb") as stdin:
        reader = subprocess.Popen([sys.executable, "-m", "shared", "classify"], stdin=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert reader.stdout is not None and reader.stderr is not None
        assert reader.stdout.readline().startswith(b'{"id": "0"')
        reader.stdout.close()  # like `| head -1`
        assert reader.wait(timeout=60) == 141
        assert reader.stderr.read() == b""
