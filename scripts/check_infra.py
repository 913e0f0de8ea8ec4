"""Static checks of infra/ without the Bicep CLI: checkov, read so that nothing slips through.

    python scripts/check_infra.py [--checkov PATH] [--infra DIR]
        Runs `checkov -d infra --framework bicep --skip-download -o json` and fails (exit 1) when
        - any file did not parse (checkov itself exits 0 then, so its JSON `parsing_errors` is read),
        - any check failed,
        - any check was skipped without a written reason (`#checkov:skip=CKV_...:<reason>` in the Bicep),
        - checkov saw no resources at all.
        Prints passed / failed / skipped / parsing-error counts and the time taken. Exit 2: checkov missing or
        its output unreadable.

    <checkov venv>/bin/python scripts/check_infra.py parse FILE...
        Prints {path: parsed} as JSON: .bicep files through pycep (the parser checkov uses), .yaml through
        PyYAML. Both live only in checkov's venv; tests/infra/test_bicep.py calls this from the app's venv.

Only the standard library is imported at module level, so the check runs under any Python 3.11.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CHECKOV_VENV = ROOT / ".venv-checkov"
MIN_REASON_CHARS = 20  # "No comment provided" (checkov's placeholder) is 19; a real reason is longer.
SKIP_COMMENT = re.compile(r"#checkov:skip=(?P<id>CKV2?_[A-Z]+_\d+)(?::(?P<reason>.*))?")


class CheckovError(Exception):
    """checkov could not be run or its output could not be read."""


def find_checkov(explicit: str | None) -> str:
    """The checkov executable: --checkov, $CHECKOV, the project's .venv-checkov, then PATH."""
    for candidate in (explicit, os.environ.get("CHECKOV"), str(DEFAULT_CHECKOV_VENV / "bin" / "checkov")):
        if candidate and Path(candidate).is_file():
            return candidate
    on_path = shutil.which("checkov")
    if on_path:
        return on_path
    raise CheckovError(
        "checkov not found. Create its own venv (its pins clash with the app's):\n"
        f"  python3 -m venv {DEFAULT_CHECKOV_VENV.name} && {DEFAULT_CHECKOV_VENV.name}/bin/pip install checkov==3.3.30"
    )


def run_checkov(checkov: str, infra: Path) -> dict:
    """Run checkov on `infra` and return the bicep report (one dict with `summary` and `results`)."""
    cmd = [checkov, "-d", str(infra), "--framework", "bicep", "--skip-download", "-o", "json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    # 0: all passed, 1: some failed. Anything else is checkov itself failing.
    if proc.returncode not in (0, 1):
        raise CheckovError(f"checkov exited {proc.returncode}:\n{proc.stderr.strip()[-2000:]}")
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise CheckovError(f"checkov output is not JSON ({exc.msg}):\n{proc.stdout[:500]}") from exc
    # One framework gives a dict; several, a list. An empty directory gives a bare summary without results.
    reports = report if isinstance(report, list) else [report]
    for item in reports:
        if item.get("check_type") == "bicep":
            return item
    if reports and "check_type" not in reports[0] and "results" not in reports[0]:
        raise CheckovError(f"checkov found nothing to check in {infra}: {reports[0]}")
    raise CheckovError(f"no bicep report in checkov's output (check types: {[r.get('check_type') for r in reports]})")


def unexplained_skips(report: dict) -> list[dict]:
    """Skipped checks whose skip comment gives no real reason."""
    bad = []
    for check in report["results"].get("skipped_checks", []):
        reason = ((check.get("check_result") or {}).get("suppress_comment") or "").strip()
        if reason == "No comment provided" or len(reason) < MIN_REASON_CHARS:
            bad.append(check)
    return bad


def stale_skips(infra: Path, report: dict) -> list[str]:
    """`#checkov:skip=` comments for checks that no longer fire on their resource (they hide nothing; remove them)."""
    fired = {(Path(c["file_path"]).name, c["check_id"]) for c in report["results"].get("skipped_checks", [])}
    stale = []
    for path in sorted(infra.rglob("*.bicep")):
        for lineno, line in enumerate(path.read_text().splitlines(), start=1):
            match = SKIP_COMMENT.search(line)
            if match and (path.name, match["id"]) not in fired:
                stale.append(f"{path.relative_to(infra)}:{lineno} {match['id']}")
    return stale


def check(args: argparse.Namespace) -> int:
    infra = Path(args.infra).resolve()
    bicep_files = sorted(infra.rglob("*.bicep"))
    if not bicep_files:
        print(f"no .bicep files under {infra}", file=sys.stderr)
        return 2
    try:
        checkov = find_checkov(args.checkov)
        started = time.monotonic()
        report = run_checkov(checkov, infra)
        elapsed = time.monotonic() - started
    except CheckovError as exc:
        print(f"check_infra: {exc}", file=sys.stderr)
        return 2

    summary = report["summary"]
    results = report["results"]
    problems: list[str] = []

    parse_failures = results.get("parsing_errors") or []
    if summary.get("parsing_errors", 0) or parse_failures:
        problems.append(
            f"{summary.get('parsing_errors', len(parse_failures))} file(s) did not parse (pycep-parser reads no "
            "user-defined `type`, `func`, `@export()` or multi-line argument lists): " + ", ".join(parse_failures)
        )
    for failed in results.get("failed_checks", []):
        problems.append(
            f"FAILED {failed['check_id']} {failed['resource']} ({failed['file_path']}:"
            f"{failed['file_line_range'][0]}): {failed['check_name']}"
        )
    for skipped in unexplained_skips(report):
        problems.append(
            f"SKIPPED WITHOUT A REASON {skipped['check_id']} {skipped['resource']} ({skipped['file_path']}): "
            "write `#checkov:skip=<id>:<why this does not apply here>`"
        )
    if summary.get("resource_count", 0) == 0:
        problems.append("checkov saw no resources: nothing was checked")

    where = infra.relative_to(ROOT) if infra.is_relative_to(ROOT) else infra
    print(f"checkov {summary.get('checkov_version', '?')} on {where} ({len(bicep_files)} .bicep files, "
          f"{summary.get('resource_count', 0)} resources) in {elapsed:.1f} s")
    print(f"  passed {summary['passed']}  failed {summary['failed']}  skipped {summary['skipped']}"
          f"  parsing_errors {summary.get('parsing_errors', 0)}")
    if args.verbose:
        for skipped in results.get("skipped_checks", []):
            reason = (skipped.get("check_result") or {}).get("suppress_comment", "")
            print(f"  skip {skipped['check_id']:<14} {skipped['resource']}: {reason}")
    for stale in stale_skips(infra, report):
        print(f"  note: skip comment with nothing to skip (check did not fire): {stale}")

    if problems:
        print("\nFAIL", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print("OK")
    return 0


def parse(files: list[str]) -> int:
    """Dump parsed templates as JSON (run with checkov's venv Python: pycep and yaml live there)."""
    from pycep import BicepParser  # noqa: PLC0415  (only in checkov's venv)
    import yaml  # noqa: PLC0415

    parser = BicepParser()
    out: dict[str, object] = {}
    errors: list[str] = []
    for name in files:
        path = Path(name)
        try:
            if path.suffix == ".bicep":
                out[name] = parser.parse(file_path=path)
            elif path.suffix in (".yaml", ".yml"):
                out[name] = yaml.safe_load(path.read_text())
            else:
                out[name] = json.loads(path.read_text())
        except Exception as exc:  # noqa: BLE001  (report every file that fails, with its parser's message)
            errors.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    json.dump(out, sys.stdout, default=str)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["parse"]:
        return parse(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkov", help="checkov executable (default: $CHECKOV, .venv-checkov/bin/checkov, PATH)")
    parser.add_argument("--infra", default=str(ROOT / "infra"), help="directory to check (default: infra/)")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every skipped check with its reason")
    return check(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
