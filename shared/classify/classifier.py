"""classify(): every signal of a failure, scored by the rule tables; the best-scoring root-cause signal wins.

How a decision is made:
1. The run's structured fields (result_state, termination code/type, cluster reason) are looked up.
2. The text is parsed (signals.py): causes in depth order, codes, SQLSTATEs. A state written in the text is
   data, never the run's state.
3. Every rule that matches anything becomes a candidate with score = the rule's confidence, minus
   DEPTH_STEP for each cause between where it matched and the root cause (root cause over wrapper).
4. The highest score wins; ties go to the more specific signal (deeper cause, stronger kind, exact over
   family, code over keyword, later in the text, then rule id: never file order).
   Close runners-up of another category lower
   the confidence; nothing above UNKNOWN_BELOW means `unknown` (the LLM's turn, if configured).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.classify.excerpt import build_excerpt
from shared.classify.model import Classification, FailureSignals
from shared.classify.rules import SHIPPED, Rule, RuleIndex
from shared.classify.signals import Parsed, parse, simple_name
from shared.fingerprint import fingerprint
from shared.taxonomy import FIRST_ACTION, Category

DEPTH_STEP = 0.1  # per cause between a match and the root cause
MAX_DEPTH_PENALTY = 0.3
BARE_CODE_PENALTY = 0.03  # an error class written without [brackets] may be prose
PROSE_NAME_PENALTY = 0.25  # an exception type named in a sentence, not raised: below the gate on its own
CONFLICT_MARGIN = 0.1  # a runner-up of another category this close lowers the confidence
UNKNOWN_BELOW = 0.4  # below: no rule is sure enough to name a category
# A run's termination code that no termination rule knows is looked up among the cluster termination reasons,
# and the other way round: the two enums share many codes (SECRET_PERMISSION_DENIED, INVALID_ARGUMENT ...).
_SHARED_CODES = {"termination_code": "cluster_reason", "cluster_reason": "termination_code"}
_EVIDENCE_CHARS = 300
_MAX_EVIDENCE = 3


@dataclass(frozen=True)
class Candidate:
    """One rule that matched one signal: `evidence` is given for a field, `offset` for the text (the line is
    cut out only for the few candidates shown, never per cause: a 64 KB line may hold 10,000 causes)."""

    rule: Rule
    score: float
    evidence: str = ""
    offset: int = -1

    def text(self, parsed: Parsed) -> str:
        return self.evidence if self.offset < 0 else _around(parsed, self.offset)


def classify(signals: FailureSignals) -> Classification:
    """Classify one failure with the shipped rules."""
    return classify_with(SHIPPED.index, signals)


def classify_with(index: RuleIndex, signals: FailureSignals) -> Classification:
    """Classify one failure with the given rules (tests pass their own)."""
    parsed = parse(signals.text or "")
    candidates = sorted(_best_per_rule(_candidates(index, signals, parsed)), key=lambda c: _rank_key(c, parsed))
    fp = _fingerprint(signals, parsed)
    if not candidates or candidates[0].score < UNKNOWN_BELOW:
        evidence = (_trim(parsed.text.split("\n", 1)[0]),) if parsed.text else ()
        score = candidates[0].score if candidates else 0.0
        return Classification(
            Category.UNKNOWN, FIRST_ACTION[Category.UNKNOWN], round(score, 3), evidence,
            build_excerpt(signals.text or "", parsed, evidence), fp, None,
        )
    best = candidates[0]
    rival = next((c for c in candidates if c.rule.category is not best.rule.category), None)
    confidence = best.score
    if rival is not None and best.score - rival.score < CONFLICT_MARGIN:
        confidence -= CONFLICT_MARGIN - (best.score - rival.score)
    evidence = _evidence(best, candidates, parsed)
    return Classification(
        category=best.rule.category,
        action=FIRST_ACTION[best.rule.category],
        confidence=round(min(max(confidence, 0.0), 1.0), 3),
        evidence=evidence,
        excerpt=build_excerpt(signals.text or "", parsed, evidence),
        fingerprint=fp,
        rule_id=best.rule.id,
    )


def _candidates(index: RuleIndex, signals: FailureSignals, parsed: Parsed):  # noqa: ANN202 - a generator
    fields = (
        ("result_state", signals.result_state),
        ("life_cycle_state", signals.life_cycle_state),
        ("termination_code", signals.termination_code),
        ("termination_type", signals.termination_type),
        ("cluster_reason", signals.cluster_reason_code),
        ("cluster_type", signals.cluster_reason_type),
    )
    attempt = signals.attempt
    for kind, value in fields:
        if not value:
            continue
        code = value.strip().upper()
        found = [index.match(kind, code), index.match_later(kind, code, attempt)]
        if not any(found) and kind in _SHARED_CODES:  # Databricks reuses codes across the two enums
            found = [index.match(_SHARED_CODES[kind], code)]
        for rule in found:
            if rule:
                yield Candidate(rule, rule.confidence, f"{kind}={value}")
    # A state written in the text ({"result_state": "CANCELED"} in a logged body or a quoted record) is data,
    # not the run's state: that comes from the Jobs API fields above, never from text.
    root = parsed.root_rank

    def penalty(offset: int) -> float:
        return min(MAX_DEPTH_PENALTY, DEPTH_STEP * (root - parsed.rank_at(offset)))

    for token in parsed.codes:
        is_type_tag = token.offset > 1 and parsed.text[token.offset - 1] == "(" and parsed.text[token.offset - 2].isalnum()
        kinds = ("cluster_type",) if is_type_tag else ("termination_code", "cluster_reason", "error_class")
        for kind in kinds:
            for rule in (index.match(kind, token.value), index.match_later(kind, token.value, attempt)):
                if rule:
                    bare = BARE_CODE_PENALTY if kind == "error_class" and not token.bracketed else 0.0
                    yield Candidate(rule, rule.confidence - bare - penalty(token.offset), offset=token.offset)
    for token in parsed.sqlstates:
        rule = index.match("sqlstate", token.value)
        if rule:
            yield Candidate(rule, rule.confidence - penalty(token.offset), offset=token.offset)
    for token in parsed.named:  # "cannot recover from MemoryError while ...": the type, named in a sentence
        rule = index.match("exception", token.value) or index.match("exception_family", token.value)
        if rule:
            yield Candidate(rule, rule.confidence - PROSE_NAME_PENALTY - penalty(token.offset), offset=token.offset)
    for cause in parsed.causes:
        if not cause.exception:
            continue
        # An exact name first; a type no rule names by its family (less confident, weaker kind).
        rule = index.match("exception", cause.exception) or index.match("exception_family", cause.exception)
        if rule:
            yield Candidate(rule, rule.confidence - min(MAX_DEPTH_PENALTY, DEPTH_STEP * (root - cause.rank)),
                            offset=cause.offset)
    for rule, offsets in index.search(parsed.text, parsed.lower):
        deepest = max(offsets, key=parsed.rank_at)
        yield Candidate(rule, rule.confidence - (0.0 if rule.anywhere else penalty(deepest)), offset=deepest)


def _rank_key(c: Candidate, parsed: Parsed) -> tuple:
    """Best first: the higher score; on a tie the more specific signal: the deeper cause (an API field
    describes the whole run, so it counts as deepest), then the stronger kind (a field over a code over an
    exact exception over a family over a phrase), then the later place in the text, then the rule id, so
    the order never depends on which file a rule sits in."""
    depth = parsed.root_rank + 1 if c.offset < 0 else parsed.rank_at(c.offset)
    return (-round(c.score, 9), -depth, c.rule.strength, -c.offset, c.rule.id)


def _best_per_rule(candidates) -> list[Candidate]:  # noqa: ANN001 - an iterable of Candidate
    """One candidate per rule: its best score, the deepest place on a tie (10,000 causes of one rule sort as one)."""
    best: dict[str, Candidate] = {}
    for c in candidates:
        kept = best.get(c.rule.id)
        if kept is None or c.score > kept.score or (c.score == kept.score and c.offset > kept.offset):
            best[c.rule.id] = c
    return list(best.values())


def _evidence(best: Candidate, candidates: list[Candidate], parsed: Parsed) -> tuple[str, ...]:
    """The deciding line first, then up to two other lines that agree with it."""
    lines = [best.text(parsed)]
    for c in candidates[1:]:
        if len(lines) >= _MAX_EVIDENCE:
            break
        if c.rule.category is best.rule.category:
            line = c.text(parsed)
            if line not in lines:
                lines.append(line)
    return tuple(_trim(line) for line in lines if line)


def _around(parsed: Parsed, offset: int) -> str:
    """The line holding `offset`, cut to a window around it when the line is long."""
    start, end = parsed.line_bounds(offset)
    if end - start <= _EVIDENCE_CHARS:
        return parsed.text[start:end]
    lo = max(start, offset - _EVIDENCE_CHARS // 3)
    hi = min(end, lo + _EVIDENCE_CHARS - 2)
    return ("…" if lo > start else "") + parsed.text[lo:hi] + ("…" if hi < end else "")


def _trim(line: str) -> str:
    line = line.strip()
    return line if len(line) <= _EVIDENCE_CHARS else line[: _EVIDENCE_CHARS - 1] + "…"


def _fingerprint(signals: FailureSignals, parsed: Parsed) -> str:
    root = parsed.root
    root_rank = root.rank
    bracketed = [t for t in parsed.codes if t.bracketed]
    error_class = None
    if bracketed:  # the deepest bracketed class: the one nearest the root cause
        error_class = max(bracketed, key=lambda t: (parsed.rank_at(t.offset), t.offset)).value
    code = signals.cluster_reason_code or signals.termination_code
    if not code:
        tagged = [t.value for t in parsed.codes if parsed.text[t.offset + len(t.value): t.offset + len(t.value) + 1] == "("]
        code = tagged[-1] if tagged else None
    if code == "RUN_EXECUTION_ERROR":  # says only "see the task output": the output is what identifies it
        code = None
    text = parsed.cause_text(root) if root_rank or root.exception else parsed.text[:600]
    return fingerprint(text, exception=simple_name(root.exception), error_class=error_class, code=code)
