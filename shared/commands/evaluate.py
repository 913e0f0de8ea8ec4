"""`python -m shared eval`: the classifier's accuracy on a labeled set, with the figures CI enforces.

Prints category and action accuracy, the harmful decisions (retrying what a retry cannot fix, ignoring
anything but a cancellation), a calibration table (confidence band -> count, accuracy; above the LLM gate
read from LLM_CONFIDENCE_THRESHOLD), a confusion matrix, every miss, and the failures no rule matched.
Known misses (tests/data/known-misses.json, by set and id) are allowed; any other miss fails, and a known
miss that is fixed fails too until it leaves the list. The labels are read only to score: the classifier
sees `text` and the run-state fields, nothing else.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from shared.commands.classify import build_classifier, gate, signals_from_record
from shared.decide import first_attempt_action
from shared.taxonomy import FIRST_ACTION, NEVER_RETRY, Action, Category

ROOT = Path(__file__).resolve().parents[2]  # the repository root (shared/commands/evaluate.py -> ../..)
DEFAULT_DATA = ROOT.parent / "shared" / "eval" / "dev.jsonl"  # the developers' dev set, when beside the repo
OWN_DATA = ROOT / "tests" / "data" / "dev-2.jsonl"  # always in the repository
KNOWN_MISSES = ROOT / "tests" / "data" / "known-misses.json"
BANDS = (0.0, 0.4, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0001)
_RETRIES = frozenset({Action.RETRY, Action.RETRY_WITH_NEW_PARAMS})
_ORDER = [c for c in Category]
# What the agent would know: the text, the run-state fields and the attempt (never the label or provenance).
_SIGNAL_FIELDS = ("text", "result_state", "life_cycle_state", "termination_code", "termination_type",
                  "cluster_reason_code", "cluster_reason_type", "attempt")


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

    @property
    def correct(self) -> bool:
        return self.predicted is self.expected


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=None,
                        help="labeled JSON lines (default: ../shared/eval/dev.jsonl beside the repository when "
                        "present, else tests/data/dev-2.jsonl)")
    parser.add_argument("--if-present", action="store_true",
                        help="a missing --data file is skipped with a note (exit 0) instead of an error")
    parser.add_argument("--report-only", action="store_true",
                        help="print the figures, never fail (a holdout scored once)")
    parser.add_argument("--llm", action="store_true", help="let the LLM refine low-confidence answers")
    parser.add_argument("--threshold", type=float, default=None, metavar="RATIO",
                        help="the LLM gate for the calibration table (default: LLM_CONFIDENCE_THRESHOLD)")
    parser.add_argument("--known-misses", type=Path, default=KNOWN_MISSES, metavar="PATH",
                        help="JSON {set file name: [ids]} of misses allowed (default: tests/data/known-misses.json)")
    parser.add_argument("--fail-under-category", type=float, default=None, metavar="RATIO",
                        help="exit 1 if category accuracy is below RATIO (e.g. 0.99)")
    parser.add_argument("--fail-under-action", type=float, default=None, metavar="RATIO",
                        help="exit 1 if action accuracy is below RATIO (e.g. 0.99)")
    parser.add_argument("--max-harmful", type=int, default=None, metavar="N",
                        help="exit 1 if more than N decisions are harmful")
    parser.add_argument("--fail-under-gated", type=float, default=None, metavar="RATIO",
                        help="exit 1 if accuracy above the LLM gate is below RATIO (e.g. 0.99)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object instead")


def default_data() -> Path:
    """The dev set beside the repository when present, else the repository's own labeled set."""
    return DEFAULT_DATA if DEFAULT_DATA.exists() else OWN_DATA


def configured_threshold() -> float:
    """LLM_CONFIDENCE_THRESHOLD as the app reads it (its default when the settings cannot be read)."""
    gate.cache_clear()
    return gate()


def run(args: argparse.Namespace) -> int:
    data = getattr(args, "data", None) or default_data()
    path = data if data.is_absolute() else (ROOT / data)
    if not path.exists():
        if getattr(args, "if_present", False):
            print(f"skipped: no labeled data at {path}")
            return 0
        print(f"error: no labeled data at {path}", file=sys.stderr)
        return 2
    threshold = args.threshold if getattr(args, "threshold", None) is not None else configured_threshold()
    outcomes, problems = evaluate(path, build_classifier(args.llm), threshold)
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    if not outcomes:
        print("error: no usable labeled records", file=sys.stderr)
        return 2
    figures = summarize(outcomes, threshold)
    known = load_known_misses(getattr(args, "known_misses", None), path.name)
    figures["new_misses"] = sorted(o.id for o in outcomes if not o.correct and o.id not in known)
    figures["fixed_misses"] = sorted(i for i in known if any(o.id == i and o.correct for o in outcomes))
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        report(outcomes, figures, path)
    return 0 if getattr(args, "report_only", False) else _verdict(figures, args)


def load_known_misses(path: Path | None, set_name: str) -> frozenset[str]:
    """The ids of `set_name`'s misses the repository accepts for now (empty without a list)."""
    if path is None or not path.exists():
        return frozenset()
    data = json.loads(path.read_text(encoding="utf-8"))
    return frozenset(str(i) for i in data.get(set_name, []))


def evaluate(path: Path, classify, threshold: float = 0.75) -> tuple[list[Outcome], list[str]]:  # noqa: ANN001
    """Classify every labeled record of `path`; the action is what the agent does on a first failure without an
    LLM (the unsure policy applies below `threshold`)."""
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
        signals = signals_from_record({k: record.get(k) for k in _SIGNAL_FIELDS if record.get(k) is not None})
        result = classify(signals)
        outcomes.append(Outcome(
            id=str(record.get("id", number)), expected=expected, expected_action=expected_action,
            predicted=result.category, confidence=result.confidence,
            action=first_attempt_action(result.category, result.action, result.confidence, threshold),
            rule_id=result.rule_id, evidence=result.evidence[0] if result.evidence else "",
        ))
    return outcomes, problems


def calibration(outcomes: list[Outcome], threshold: float) -> dict:
    """Count and accuracy per confidence band, and above / below the LLM gate."""
    bands = []
    for lo, hi in zip(BANDS, BANDS[1:]):
        inside = [o for o in outcomes if lo <= o.confidence < hi]
        bands.append({"band": f"{lo:.2f}-{min(hi, 1.0):.2f}", "count": len(inside),
                      "accuracy": (sum(o.correct for o in inside) / len(inside)) if inside else None})
    above = [o for o in outcomes if o.confidence >= threshold]
    below = [o for o in outcomes if o.confidence < threshold]
    misses = [o for o in outcomes if not o.correct]
    return {
        "threshold": threshold, "bands": bands,
        "above_gate": len(above), "above_gate_accuracy": (sum(o.correct for o in above) / len(above)) if above else 1.0,
        "below_gate": len(below), "misses_below_gate": sum(o.confidence < threshold for o in misses),
    }


def summarize(outcomes: list[Outcome], threshold: float = 0.75) -> dict:
    total = len(outcomes)
    return {
        "records": total,
        "category_accuracy": sum(o.correct for o in outcomes) / total,
        "action_accuracy": sum(o.action is o.expected_action for o in outcomes) / total,
        "harmful": sum(o.harmful for o in outcomes),
        "unknown": sum(o.predicted is Category.UNKNOWN for o in outcomes),
        "low_confidence": sum(o.confidence < threshold for o in outcomes),
        "calibration": calibration(outcomes, threshold),
        "misses": [{"id": o.id, "expected": o.expected.value, "predicted": o.predicted.value,
                    "rule_id": o.rule_id, "confidence": o.confidence, "harmful": o.harmful}
                   for o in outcomes if not o.correct],
    }


def report(outcomes: list[Outcome], figures: dict, path: Path) -> None:
    out = sys.stdout
    cal = figures["calibration"]
    print(f"classifier evaluation on {path} ({figures['records']} records)", file=out)
    print(f"  category accuracy  {figures['category_accuracy']:7.2%}", file=out)
    print(f"  action accuracy    {figures['action_accuracy']:7.2%}", file=out)
    print(f"  harmful decisions  {figures['harmful']:7d}   (retried permission/code/data/quota, or ignored a "
          "non-cancellation)", file=out)
    print(f"  unknown            {figures['unknown']:7d}", file=out)
    print(f"  below the LLM gate {figures['low_confidence']:7d}   (confidence < {cal['threshold']:.2f}: the LLM "
          "would be asked; without one the unsure policy applies)", file=out)
    print(f"\ncalibration (LLM gate {cal['threshold']:.2f}: above it {cal['above_gate']} answers, accuracy "
          f"{cal['above_gate_accuracy']:.2%}; {cal['misses_below_gate']} of {len(figures['misses'])} misses below it)",
          file=out)
    print("  confidence      count  accuracy", file=out)
    for band in cal["bands"]:
        accuracy = "-" if band["accuracy"] is None else f"{band['accuracy']:.2%}"
        print(f"  {band['band']:<14}{band['count']:>6}  {accuracy:>8}", file=out)
    print("\nconfusion matrix (rows: expected, columns: predicted)", file=out)
    cats = [c for c in _ORDER if any(o.expected is c or o.predicted is c for o in outcomes)]
    short = {c: c.value[:5] for c in cats}
    print(" " * 18 + "".join(f"{short[c]:>7}" for c in cats), file=out)
    counts = Counter((o.expected, o.predicted) for o in outcomes)
    for row in cats:
        cells = "".join(f"{counts[(row, col)] or '.':>7}" for col in cats)
        print(f"  {row.value:<16}{cells}", file=out)
    misses = [o for o in outcomes if not o.correct]
    new = set(figures.get("new_misses", ()))
    print(f"\nmisclassified ({len(misses)}; new: {len(new)})", file=out)
    for o in misses:
        flag = ("  HARMFUL" if o.harmful else "") + ("  NEW" if o.id in new else "  known")
        print(f"  {o.id:<8} expected {o.expected.value:<14} predicted {o.predicted.value:<14} "
              f"rule {o.rule_id or '-':<28} conf {o.confidence:.2f}{flag}", file=out)
        print(f"           {o.evidence[:150]}", file=out)
    for fixed in figures.get("fixed_misses", ()):
        print(f"  {fixed:<8} is right now: remove it from {KNOWN_MISSES.name}", file=out)
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
    gated = getattr(args, "fail_under_gated", None)
    cal = figures["calibration"]
    if gated is not None and cal["above_gate_accuracy"] < gated:
        failed.append(f"accuracy above the LLM gate {cal['above_gate_accuracy']:.2%} < {gated:.2%}")
    if figures.get("new_misses"):
        failed.append(f"new misses (not in {KNOWN_MISSES.name}): {', '.join(figures['new_misses'])}")
    if figures.get("fixed_misses"):
        failed.append(f"fixed misses still listed in {KNOWN_MISSES.name}: {', '.join(figures['fixed_misses'])}")
    for reason in failed:
        print(f"FAIL: {reason}", file=sys.stderr)
    return 1 if failed else 0
