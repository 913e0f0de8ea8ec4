"""`python -m shared eval`: the classifier's accuracy on a labeled set, with the figures CI enforces.

Prints category and action accuracy, the harmful decisions (retrying what a retry cannot fix, ignoring
anything but a cancellation), a confusion matrix, every miss with predicted vs expected, and the failures
no rule matched (where new rules come from). The labels (`category`, `action`) are read only to score;
the classifier sees `text` and the run-state fields, nothing else.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from shared.commands.classify import build_classifier, signals_from_record
from shared.taxonomy import FIRST_ACTION, NEVER_RETRY, Action, Category

ROOT = Path(__file__).resolve().parents[2]  # the repository root (shared/commands/evaluate.py -> ../..)
DEFAULT_DATA = ROOT.parent / "shared" / "eval" / "dev.jsonl"
_RETRIES = frozenset({Action.RETRY, Action.RETRY_WITH_NEW_PARAMS})
_ORDER = [c for c in Category]


@dataclass(frozen=True)
class Outcome:
    """One labeled record and what the classifier said about it."""

    id: str
    expected: Category
    expected_action: Action
    predicted: Category
    action: Action
    confidence: float
    rule_id: str | None
    evidence: str

    @property
    def harmful(self) -> bool:
        """Retrying a failure a retry cannot fix, or ignoring anything but a cancellation."""
        if self.action in _RETRIES and self.expected in NEVER_RETRY:
            return True
        return self.action is Action.IGNORE and self.expected is not Category.CANCELLED


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="labeled JSON lines (default: ../shared/eval/dev.jsonl beside the repository)")
    parser.add_argument("--llm", action="store_true", help="let the LLM refine low-confidence answers")
    parser.add_argument("--fail-under-category", type=float, default=None, metavar="RATIO",
                        help="exit 1 if category accuracy is below RATIO (e.g. 0.97)")
    parser.add_argument("--fail-under-action", type=float, default=None, metavar="RATIO",
                        help="exit 1 if action accuracy is below RATIO (e.g. 0.98)")
    parser.add_argument("--max-harmful", type=int, default=None, metavar="N",
                        help="exit 1 if more than N decisions are harmful")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object instead")


def run(args: argparse.Namespace) -> int:
    path = args.data if args.data.is_absolute() else (ROOT / args.data)
    if not path.exists():
        print(f"error: no labeled data at {path}", file=sys.stderr)
        return 2
    outcomes, problems = evaluate(path, build_classifier(args.llm))
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    if not outcomes:
        print("error: no usable labeled records", file=sys.stderr)
        return 2
    figures = summarize(outcomes)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        report(outcomes, figures, path)
    return _verdict(figures, args)


def evaluate(path: Path, classify) -> tuple[list[Outcome], list[str]]:  # noqa: ANN001 - any classifier callable
    """Classify every labeled record of `path`."""
    outcomes: list[Outcome] = []
    problems: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            expected = Category(record["category"])
            expected_action = Action(record.get("action") or FIRST_ACTION[expected].value)
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"line {number}: skipped ({exc})")
            continue
        # Only the fields the agent would have: never the label, source, note, hard or shape.
        signals = signals_from_record({k: record.get(k) for k in (
            "text", "result_state", "life_cycle_state", "termination_code", "termination_type",
            "cluster_reason_code", "cluster_reason_type")})
        result = classify(signals)
        outcomes.append(Outcome(
            id=str(record.get("id", number)), expected=expected, expected_action=expected_action,
            predicted=result.category, action=result.action, confidence=result.confidence,
            rule_id=result.rule_id, evidence=result.evidence[0] if result.evidence else "",
        ))
    return outcomes, problems


def summarize(outcomes: list[Outcome]) -> dict:
    total = len(outcomes)
    return {
        "records": total,
        "category_accuracy": sum(o.predicted is o.expected for o in outcomes) / total,
        "action_accuracy": sum(o.action is o.expected_action for o in outcomes) / total,
        "harmful": sum(o.harmful for o in outcomes),
        "unknown": sum(o.predicted is Category.UNKNOWN for o in outcomes),
        "low_confidence": sum(o.confidence < 0.75 for o in outcomes),
        "misses": [{"id": o.id, "expected": o.expected.value, "predicted": o.predicted.value,
                    "rule_id": o.rule_id, "harmful": o.harmful} for o in outcomes if o.predicted is not o.expected],
    }


def report(outcomes: list[Outcome], figures: dict, path: Path) -> None:
    out = sys.stdout
    print(f"classifier evaluation on {path} ({figures['records']} records)", file=out)
    print(f"  category accuracy  {figures['category_accuracy']:7.2%}", file=out)
    print(f"  action accuracy    {figures['action_accuracy']:7.2%}", file=out)
    print(f"  harmful decisions  {figures['harmful']:7d}   (retried permission/code/data/quota, or ignored a "
          "non-cancellation)", file=out)
    print(f"  unknown            {figures['unknown']:7d}", file=out)
    print(f"  confidence < 0.75  {figures['low_confidence']:7d}   (the LLM would be asked)", file=out)
    print("\nconfusion matrix (rows: expected, columns: predicted)", file=out)
    cats = [c for c in _ORDER if any(o.expected is c or o.predicted is c for o in outcomes)]
    short = {c: c.value[:5] for c in cats}
    print(" " * 18 + "".join(f"{short[c]:>7}" for c in cats), file=out)
    counts = Counter((o.expected, o.predicted) for o in outcomes)
    for row in cats:
        cells = "".join(f"{counts[(row, col)] or '.':>7}" for col in cats)
        print(f"  {row.value:<16}{cells}", file=out)
    misses = [o for o in outcomes if o.predicted is not o.expected]
    print(f"\nmisclassified ({len(misses)})", file=out)
    for o in misses:
        flag = "  HARMFUL" if o.harmful else ""
        print(f"  {o.id:<8} expected {o.expected.value:<14} predicted {o.predicted.value:<14} "
              f"rule {o.rule_id or '-':<28} conf {o.confidence:.2f}{flag}", file=out)
        print(f"           {o.evidence[:150]}", file=out)
    unmatched = [o for o in outcomes if o.rule_id is None]
    if unmatched:
        print(f"\nno rule matched ({len(unmatched)}): candidates for new rules", file=out)
        for o in unmatched:
            print(f"  {o.id:<8} {o.evidence[:150]}", file=out)


def _verdict(figures: dict, args: argparse.Namespace) -> int:
    failed = []
    if args.fail_under_category is not None and figures["category_accuracy"] < args.fail_under_category:
        failed.append(f"category accuracy {figures['category_accuracy']:.2%} < {args.fail_under_category:.2%}")
    if args.fail_under_action is not None and figures["action_accuracy"] < args.fail_under_action:
        failed.append(f"action accuracy {figures['action_accuracy']:.2%} < {args.fail_under_action:.2%}")
    if args.max_harmful is not None and figures["harmful"] > args.max_harmful:
        failed.append(f"harmful decisions {figures['harmful']} > {args.max_harmful}")
    for reason in failed:
        print(f"FAIL: {reason}", file=sys.stderr)
    return 1 if failed else 0
