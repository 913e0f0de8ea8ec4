"""The command line: `python -m shared classify` (the hidden evaluation uses it), `eval` and `bench`."""

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.classify import FailureSignals, classify
from shared.taxonomy import Action, Category
from shared.commands import classify as classify_command, evaluate
from shared.commands.bench import adversarial_inputs, synthetic_trace

ROOT = Path(__file__).resolve().parents[2]


def run_stream(lines, **kw):
    out = io.StringIO()
    _, errors = classify_command.classify_stream(iter(lines), out, classify, **kw)
    return errors, [json.loads(line) for line in out.getvalue().splitlines()]


def test_each_line_in_gives_one_line_out_with_its_id_echoed():
    _, answers = run_stream([json.dumps({"id": "a", "text": "KeyError: 'x'"}) + "\n",
                             json.dumps({"id": 7, "text": "java.lang.OutOfMemoryError: Java heap space"}) + "\n"])
    assert [a["id"] for a in answers] == ["a", 7]
    assert answers[0] == {"id": "a", "category": "code", "action": "SEND_EMAIL",
                          "confidence": answers[0]["confidence"], "evidence": ["KeyError: 'x'"]}


def test_optional_state_fields_are_used_and_other_keys_ignored():
    _, answers = run_stream([json.dumps({"id": 1, "text": "", "result_state": "CANCELED", "category": "data",
                                         "note": "ignored"})])
    assert answers[0]["category"] == "cancelled"


def test_termination_fields_are_used():
    _, answers = run_stream([json.dumps({"text": "", "termination_code": "UNAUTHORIZED_ERROR",
                                         "termination_type": "CLIENT_ERROR"})])
    assert answers[0]["category"] == "permission"


def test_a_bad_line_gives_an_error_line_naming_the_problem_and_the_rest_still_come_out():
    errors, answers = run_stream(["not json\n", json.dumps({"id": 2, "text": 5}) + "\n", "[1]\n",
                                  json.dumps({"id": 3}) + "\n", json.dumps({"id": 4, "text": "KeyError: 'x'"}) + "\n"])
    assert errors == 4
    assert answers[0]["line"] == 1 and "not valid JSON" in answers[0]["error"]
    assert answers[1] == {"id": 2, "line": 2, "error": "field 'text' must be a string, got int"}
    assert "expected a JSON object" in answers[2]["error"]
    assert answers[3]["id"] == 3 and "missing field 'text'" in answers[3]["error"]
    assert answers[4]["id"] == 4 and answers[4]["category"] == "code"


def test_a_state_field_of_the_wrong_type_is_named():
    _, answers = run_stream([json.dumps({"id": 1, "text": "x", "result_state": 3})])
    assert answers[0]["error"] == "field 'result_state' must be a string or null, got int"


def test_blank_lines_are_skipped():
    _, answers = run_stream(["\n", "  \n", json.dumps({"text": "x"}) + "\n"])
    assert len(answers) == 1


def test_details_add_rule_fingerprint_and_excerpt():
    _, answers = run_stream([json.dumps({"text": "KeyError: 'x'"})], details=True)
    assert {"rule_id", "fingerprint", "excerpt"} <= set(answers[0])


def test_llm_flag_without_a_configured_llm_falls_back_to_the_rules(monkeypatch, capsys):
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    monkeypatch.delenv("AZURE_OPENAI_DEPLOYMENT", raising=False)
    assert classify_command.build_classifier(llm=True) is classify
    assert "using the rules only" in capsys.readouterr().err


def test_python_m_shared_classify_reads_stdin_and_writes_json_lines():
    lines = json.dumps({"id": "x1", "text": "ModuleNotFoundError: No module named 'x'"}) + "\nnot json\n"
    done = subprocess.run([sys.executable, "-m", "shared", "classify"], input=lines, capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 0
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert out[0]["id"] == "x1" and out[0]["category"] == "code"
    assert "error" in out[1]


RAW_TRACE = """Traceback (most recent call last):
  File "/Workspace/Repos/etl/jobs/load.py", line 12, in <module>
    import great_tables
ModuleNotFoundError: No module named 'great_tables'
"""


def test_a_pasted_raw_trace_is_one_failure_with_one_answer():
    out = io.StringIO()
    classified, errors = classify_command.classify_input(io.StringIO(RAW_TRACE), out, classify)
    answers = [json.loads(line) for line in out.getvalue().splitlines()]
    assert (classified, errors) == (1, 0) and len(answers) == 1
    assert answers[0]["category"] == "code" and answers[0]["id"] is None


def test_json_lines_with_a_few_bad_lines_stay_json_lines():
    lines = ["not json\n", json.dumps({"id": 1, "text": "KeyError: 'x'"}) + "\n",
             json.dumps({"id": 2, "text": "KeyError: 'y'"}) + "\n"]
    out = io.StringIO()
    assert classify_command.classify_input(iter(lines), out, classify) == (2, 1)


def run_cli(*args, stdin=""):
    return subprocess.run([sys.executable, "-m", "shared", "classify", *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, timeout=60)


def test_cli_raw_text_on_stdin_and_text_option():
    done = run_cli(stdin=RAW_TRACE)
    assert done.returncode == 0 and json.loads(done.stdout)["category"] == "code"
    done = run_cli("--text", "Run was cancelled by user", "--result-state", "CANCELED")
    assert done.returncode == 0 and json.loads(done.stdout)["category"] == "cancelled"


def test_cli_exits_non_zero_when_nothing_could_be_classified():
    assert run_cli(stdin="").returncode == 1
    done = run_cli(stdin=json.dumps({"id": 1}) + "\n" + json.dumps({"id": 2, "text": 3}) + "\n")
    assert done.returncode == 1 and "nothing could be classified" in done.stderr
    assert len(done.stdout.splitlines()) == 2  # each bad line still gets its error line


# --- eval --------------------------------------------------------------------------------------------------------

def labeled(tmp_path, records):
    path = tmp_path / "labeled.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def eval_args(path, **kw):
    defaults = dict(data=path, llm=False, fail_under_category=None, fail_under_action=None, max_harmful=None,
                    json=False)
    defaults.update(kw)
    return argparse.Namespace(**defaults)


def test_eval_counts_accuracy_and_harmful_decisions(tmp_path):
    path = labeled(tmp_path, [
        {"id": "ok", "text": "KeyError: 'x'", "category": "code", "action": "SEND_EMAIL"},
        # labeled permission, but the text looks like a network error: retrying it would be harmful
        {"id": "harm", "text": "Connection refused", "category": "permission", "action": "SEND_EMAIL"},
    ])
    outcomes, problems = evaluate.evaluate(path, classify)
    figures = evaluate.summarize(outcomes)
    assert problems == []
    assert (figures["category_accuracy"], figures["action_accuracy"], figures["harmful"]) == (0.5, 0.5, 1)
    assert figures["misses"][0]["id"] == "harm"


def test_eval_never_shows_the_label_to_the_classifier(tmp_path):
    seen = []
    path = labeled(tmp_path, [{"id": "a", "text": "x", "result_state": "FAILED", "category": "code",
                               "action": "SEND_EMAIL", "source": "s", "note": "n", "hard": True, "shape": "sh"}])
    evaluate.evaluate(path, lambda signals: seen.append(signals) or classify(signals))
    assert seen == [FailureSignals(text="x", result_state="FAILED")]


def test_eval_fails_under_the_thresholds(tmp_path, capsys):
    path = labeled(tmp_path, [{"id": "a", "text": "Connection refused", "category": "permission"}])
    known = tmp_path / "known.json"
    known.write_text(json.dumps({path.name: ["a"]}))
    assert evaluate.run(eval_args(path, fail_under_category=0.97, known_misses=known)) == 1
    assert evaluate.run(eval_args(path, max_harmful=0, known_misses=known)) == 1
    assert evaluate.run(eval_args(path, known_misses=known)) == 0
    assert "FAIL: category accuracy" in capsys.readouterr().err


def test_eval_fails_on_a_new_miss_though_the_ratio_clears_and_on_a_fixed_miss_still_listed(tmp_path, capsys):
    records = [{"id": f"ok{i}", "text": "KeyError: 'x'", "category": "code"} for i in range(200)]
    path = labeled(tmp_path, records + [{"id": "m1", "text": "Connection refused", "category": "timeout"}])
    known = tmp_path / "known.json"
    known.write_text(json.dumps({path.name: []}))
    assert evaluate.run(eval_args(path, fail_under_category=0.99, known_misses=known)) == 1
    assert "new misses (not in known-misses.json): m1" in capsys.readouterr().err
    known.write_text(json.dumps({path.name: ["m1"]}))
    assert evaluate.run(eval_args(path, fail_under_category=0.99, known_misses=known)) == 0
    known.write_text(json.dumps({path.name: ["m1", "ok3"]}))
    assert evaluate.run(eval_args(path, known_misses=known)) == 1
    assert "fixed misses still listed in known-misses.json: ok3" in capsys.readouterr().err


def test_eval_prints_a_calibration_table_at_the_configured_gate(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LLM_CONFIDENCE_THRESHOLD", "0.6")
    path = labeled(tmp_path, [{"id": "a", "text": "KeyError: 'x'", "category": "code"}])
    assert evaluate.run(eval_args(path)) == 0
    out = capsys.readouterr().out
    assert "calibration (LLM gate 0.60: above it 1 answers, accuracy 100.00%" in out
    assert "confidence      count  accuracy" in out


def test_calibration_counts_bands_and_the_gate():
    def outcome(i, confidence, right):
        return evaluate.Outcome(str(i), Category.CODE, Action.SEND_EMAIL, Category.CODE if right else Category.DATA,
                                Action.SEND_EMAIL, confidence, None, "")
    cal = evaluate.calibration([outcome(1, 0.95, True), outcome(2, 0.75, False), outcome(3, 0.74, False)], 0.75)
    assert (cal["above_gate"], cal["above_gate_accuracy"], cal["misses_below_gate"]) == (2, 0.5, 1)
    assert {b["band"]: b["count"] for b in cal["bands"]}["0.70-0.80"] == 2


def test_eval_skips_an_absent_set_only_when_asked(tmp_path, capsys):
    missing = tmp_path / "holdout-2.jsonl"
    assert evaluate.run(eval_args(missing, if_present=True)) == 0
    assert "skipped" in capsys.readouterr().out
    assert evaluate.run(eval_args(missing)) == 2


def test_eval_prints_the_figures_and_the_confusion_matrix(tmp_path, capsys):
    path = labeled(tmp_path, [{"id": "a", "text": "KeyError: 'x'", "category": "code"}])
    evaluate.run(eval_args(path))
    out = capsys.readouterr().out
    assert "category accuracy" in out and "action accuracy" in out and "harmful decisions" in out
    assert "confusion matrix" in out


def test_eval_default_data_is_resolved_from_the_repository_root():
    assert evaluate.DEFAULT_DATA == ROOT.parent / "shared" / "eval" / "dev.jsonl"


def test_eval_on_the_dev_set_meets_the_targets():
    if not evaluate.DEFAULT_DATA.exists():
        pytest.skip("the dev set lives beside the repository")
    figures = evaluate.summarize(evaluate.evaluate(evaluate.DEFAULT_DATA, classify)[0])
    assert figures["category_accuracy"] >= 0.97
    assert figures["action_accuracy"] >= 0.98
    assert figures["harmful"] == 0


# --- bench inputs (speed itself is measured by `python -m shared bench`, not here) ------------------------------------

def test_synthetic_trace_has_the_requested_size_and_a_root_cause():
    trace = synthetic_trace(1024 * 1024)
    assert len(trace) == 1024 * 1024
    assert "Caused by: java.lang.OutOfMemoryError" in trace[-2000:]


def test_adversarial_inputs_cover_every_search_rule():
    names = [name for name, _ in adversarial_inputs()]
    assert len(names) == len(set(names))
    assert any(name.startswith("rule ") for name in names)
