"""`python -m shared classify`: classify failures read from stdin (JSON lines, or one raw failure text) or `--text`.

JSON lines: `{"text": "...", "id": ..., "result_state": ..., "termination_code": ..., "termination_type": ...}`
(also life_cycle_state, cluster_reason_code, cluster_reason_type, and `attempt`; other keys are ignored), one JSON line out
per line in: `{"id", "category", "action", "confidence", "evidence"}`, or `{"id", "line", "error"}` naming
the problem with that line; every other line still comes out. The action is what the agent does on a
first failure without an LLM: below LLM_CONFIDENCE_THRESHOLD the unsure policy applies (never IGNORE).
Raw text (a pasted trace: stdin whose lines
are mostly not JSON objects, or `--text`) is one failure and gets one answer. The exit code is 0 when at
least one failure was classified, 1 when none could be. Rules only unless `--llm`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from functools import lru_cache
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from shared.classify import Classification, FailureSignals, classify
from shared.decide import first_attempt_action

Classifier = Callable[[FailureSignals], Classification]
_OPTIONAL = ("result_state", "life_cycle_state", "termination_code", "termination_type",
             "cluster_reason_code", "cluster_reason_type")


class RecordError(ValueError):
    """A JSON line that cannot be classified; the message names the problem."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--llm", action="store_true",
                        help="let the LLM refine low-confidence answers (needs Azure OpenAI settings)")
    parser.add_argument("--details", action="store_true",
                        help="also print rule_id, fingerprint and excerpt for each failure")
    parser.add_argument("--text", default=None, metavar="TEXT",
                        help="classify this one failure text instead of reading stdin")
    parser.add_argument("--result-state", default=None, metavar="STATE",
                        help="the run's result_state for raw text (FAILED, TIMEDOUT, CANCELED ...)")


def run(args: argparse.Namespace) -> int:
    classifier = build_classifier(args.llm)
    details = getattr(args, "details", False)
    text = getattr(args, "text", None)
    state = getattr(args, "result_state", None)
    if text is not None:
        classified, errors = classify_text(text, sys.stdout, classifier, details=details, result_state=state)
    else:
        classified, errors = classify_input(sys.stdin, sys.stdout, classifier, details=details, result_state=state)
    if errors:  # reported in-band, line by line, so a reader of stdout gets every answer
        print(f"{errors} line(s) could not be classified; see their error lines", file=sys.stderr)
    if not classified:
        print("error: nothing could be classified (give JSON lines with a 'text' field, or a failure's text)",
              file=sys.stderr)
        return 1
    return 0


def classify_input(source: Iterable[str], out: TextIO, classifier: Classifier, *, details: bool = False,
                   result_state: str | None = None) -> tuple[int, int]:
    """JSON lines, streamed, when the first non-blank line is a JSON object; otherwise the whole input is read
    and taken as one raw failure text unless most of its lines are JSON objects. Returns (classified, errors)."""
    iterator = iter(source)
    head: list[str] = []
    for line in iterator:
        head.append(line)
        if line.strip():
            break
    if head and _is_object(head[-1]):
        return classify_stream(itertools.chain(head, iterator), out, classifier, details=details)
    lines = head + list(iterator)
    nonblank = [line for line in lines if line.strip()]
    if nonblank and sum(map(_is_object, nonblank)) * 2 > len(nonblank):
        return classify_stream(iter(lines), out, classifier, details=details)
    return classify_text("".join(lines), out, classifier, details=details, result_state=result_state)


def classify_text(text: str, out: TextIO, classifier: Classifier, *, details: bool = False,
                  result_state: str | None = None) -> tuple[int, int]:
    """One raw failure text (a pasted trace) -> one answer line. Returns (classified, errors)."""
    if not text.strip():
        return 0, 0
    result = classifier(FailureSignals(text=text, result_state=(result_state or None)))
    _write(out, None, result, details)
    return 1, 0


def _is_object(line: str) -> bool:
    line = line.strip()
    if not (line.startswith("{") and line.endswith("}")):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def build_classifier(llm: bool) -> Classifier:
    """The classifier the commands use: the rules, or the rules refined by the LLM analyzer.

    The LLM seam: a module `shared.llm` exposing `cli_classifier(rules: Classifier) -> Classifier` is used
    when `--llm` is given; until it exists (or when it reports it is not configured) the rules answer alone.
    """
    if not llm:
        return classify
    try:
        from shared.llm import cli_classifier  # type: ignore[attr-defined]  # provided by the LLM analyzer
    except ImportError:
        print("warning: --llm given but no LLM analyzer is available; using the rules only", file=sys.stderr)
        return classify
    try:
        return cli_classifier(classify)
    except (RuntimeError, ValueError) as exc:  # not configured: no endpoint/deployment
        print(f"warning: LLM not configured ({exc}); using the rules only", file=sys.stderr)
        return classify


def classify_stream(source: Iterable[str], out: TextIO, classifier: Classifier, *, details: bool = False
                    ) -> tuple[int, int]:
    """Classify each JSON line of `source` into `out`; returns (lines classified, lines that were errors)."""
    errors = classified = 0
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        record_id: Any = None
        try:
            record = _parse_line(line)
            record_id = record.get("id")
            result = classifier(signals_from_record(record))
        except RecordError as exc:
            errors += 1
            out.write(json.dumps({"id": record_id, "line": number, "error": str(exc)}) + "\n")
            continue
        _write(out, record_id, result, details)
        classified += 1
    return classified, errors


def _write(out: TextIO, record_id: Any, result: Classification, details: bool) -> None:
    action = first_attempt_action(result.category, result.action, result.confidence, gate())
    answer: dict[str, Any] = {"id": record_id, "category": result.category.value, "action": action.value,
                              "confidence": round(result.confidence, 3), "evidence": list(result.evidence)}
    if details:
        answer.update(rule_id=result.rule_id, fingerprint=result.fingerprint, excerpt=result.excerpt)
    out.write(json.dumps(answer, ensure_ascii=False) + "\n")
    out.flush()


def _parse_line(line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise RecordError(f"not valid JSON: {exc.msg} at column {exc.colno}") from exc
    if not isinstance(record, dict):
        raise RecordError(f"expected a JSON object, got {type(record).__name__}")
    return record


@lru_cache(maxsize=1)
def gate() -> float:
    """LLM_CONFIDENCE_THRESHOLD as the app reads it (its default when the settings cannot be read)."""
    from shared.settings.model import Settings

    try:
        from shared.settings import load_settings

        return load_settings(require=()).llm_confidence_threshold
    except Exception:  # noqa: BLE001 - an unrelated broken setting must not stop classifying
        return Settings.model_fields["llm_confidence_threshold"].default


def signals_from_record(record: dict[str, Any]) -> FailureSignals:
    """FailureSignals from a record's `text` and optional state fields; RecordError names a bad field."""
    text = record.get("text")
    if not isinstance(text, str):
        raise RecordError("missing field 'text'" if text is None else
                          f"field 'text' must be a string, got {type(text).__name__}")
    values: dict[str, str | None] = {}
    for key in _OPTIONAL:
        value = record.get(key)
        if value is not None and not isinstance(value, str):
            raise RecordError(f"field {key!r} must be a string or null, got {type(value).__name__}")
        values[key] = value or None
    attempt = record.get("attempt", 1)
    if attempt is None:
        attempt = 1
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise RecordError(f"field 'attempt' must be a positive integer, got {attempt!r}")
    return FailureSignals(text=text, attempt=attempt, **values)
