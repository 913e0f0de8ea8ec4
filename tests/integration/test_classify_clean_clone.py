"""`make eval` and `make bench` work on a clean clone with nothing beside it (no ../shared/eval/dev.jsonl).

Runs the commands the Makefile's eval and bench targets run (`make -n`, with this interpreter as PY so no
virtualenv is built) in a fresh clone of the committed tree, in an empty temporary folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("git") is None or shutil.which("make") is None, reason="needs git and make")
def test_make_eval_and_bench_succeed_in_a_clean_clone(tmp_path):
    clone = tmp_path / "empty" / "repo"
    clone.parent.mkdir()
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], check=True, timeout=120)
    assert not (clone.parent / "shared").exists()
    plan = subprocess.run(["make", "-n", f"PY={sys.executable}", "eval", "bench"], cwd=clone, capture_output=True,
                          text=True, check=True, timeout=60).stdout
    commands = [line for line in plan.splitlines() if line.startswith(f"{sys.executable} -m shared ")]
    assert any(" eval " in c for c in commands) and any(c.rstrip().endswith("bench") for c in commands)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "AZURE_OPENAI"))}
    for command in commands:
        if "holdout" in command:
            continue  # the holdout is scored once, by the integrator, never by a test
        if command.rstrip().endswith("bench"):
            command += " --seconds 0.3 --quick"  # the figures are `make bench`'s business; here: it runs
        done = subprocess.run(command, shell=True, cwd=clone, capture_output=True, text=True, timeout=600, env=env)
        assert "Traceback" not in done.stderr, done.stderr[-2000:]
        if " eval " in command:
            assert done.returncode == 0, done.stderr[-2000:]
        else:  # bench: it must run to its figures; whether a busy test machine meets the speed targets is not asked
            assert done.returncode in (0, 1) and "worst adversarial" in done.stdout
