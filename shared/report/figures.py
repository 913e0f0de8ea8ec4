"""The figures of one window of decisions: what was decided, how often it was right, what it cost.

Accuracy is counted only from verified labels: a person's feedback, or the outcome of a rerun the agent
started (shared.learning.outcomes: a rerun that succeeded confirms the decision; one that failed again with the
same fingerprint refutes it). A decision with neither is not counted as right or wrong.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from statistics import quantiles

from pydantic import BaseModel, Field

from shared.decision import DecisionRecord
from shared.taxonomy import Action

# How much of an excerpt an unmatched-failure row shows: enough to recognise it, not a whole trace.
EXCERPT_CHARS = 240


class Verdict(BaseModel):
    """A person's word on one decision (from the feedback table): right or wrong, and what would have been."""

    decision_key: str
    correct: bool
    category: str | None = None
    action: str | None = None
    person: str | None = None


class Tally(BaseModel):
    """Verified decisions and how many were right."""

    verified: int = 0
    correct: int = 0

    @property
    def rate(self) -> float | None:
        return self.correct / self.verified if self.verified else None

    def add(self, right: bool) -> None:
        self.verified += 1
        self.correct += int(right)


class Reruns(BaseModel):
    """Reruns the agent started and how they ended."""

    started: int = 0
    succeeded: int = 0
    failed: int = 0
    pending: int = 0

    @property
    def success_rate(self) -> float | None:
        ended = self.succeeded + self.failed
        return self.succeeded / ended if ended else None


class LlmUse(BaseModel):
    calls: int = 0
    cache_hits: int = 0
    fallbacks: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


class Day(BaseModel):
    """One day of the window, for the charts."""

    day: date
    decisions: int = 0
    reruns_succeeded: int = 0
    reruns_failed: int = 0
    cost_usd: float = 0.0


class Unmatched(BaseModel):
    """Failures no rule matched, or matched below the LLM's bar, grouped by fingerprint: material for new rules."""

    fingerprint: str
    count: int
    jobs: list[str]
    rules_category: str
    llm_category: str | None = None
    excerpt: str = ""


class Corrected(BaseModel):
    """A category people corrected to another, and the rule that had decided it."""

    rule_id: str | None
    decided: str
    corrected_to: str
    count: int


class Figures(BaseModel):
    """Everything the report shows, as numbers (the page and `report --json` both render this)."""

    since: datetime
    until: datetime
    decisions: int = 0
    by_action: dict[str, int] = Field(default_factory=dict)
    by_category: dict[str, int] = Field(default_factory=dict)
    by_source: dict[str, int] = Field(default_factory=dict)
    feedback: Tally = Field(default_factory=Tally)
    feedback_by_category: dict[str, Tally] = Field(default_factory=dict)
    feedback_by_source: dict[str, Tally] = Field(default_factory=dict)
    outcomes: Tally = Field(default_factory=Tally)
    outcomes_by_category: dict[str, Tally] = Field(default_factory=dict)
    outcomes_by_source: dict[str, Tally] = Field(default_factory=dict)
    retries: Reruns = Field(default_factory=Reruns)
    resizes: Reruns = Field(default_factory=Reruns)
    retries_by_category: dict[str, Reruns] = Field(default_factory=dict)
    retries_by_category_job: dict[str, dict[str, Reruns]] = Field(
        default_factory=dict, description="category → job → its reruns: where a lower budget would save most")
    emails: int = 0
    llm: LlmUse = Field(default_factory=LlmUse)
    time_to_action_p50: float | None = None
    time_to_action_p95: float | None = None
    days: list[Day] = Field(default_factory=list)
    unmatched: list[Unmatched] = Field(default_factory=list)
    corrections: list[Corrected] = Field(default_factory=list)


def decision_source(record: DecisionRecord) -> str:
    """Who decided: a learned rule, the shipped rules, or the LLM (fresh or cached)."""
    if record.rule_id and record.rule_id.startswith("learned"):
        return "learned_rule"
    source = record.analysis.source
    return "rules" if source == "rules_fallback" else source


def is_unmatched(record: DecisionRecord, threshold: float) -> bool:
    """No rule matched, or the best one was below the LLM's bar (the rules were unsure)."""
    return record.rule_id is None or record.confidence < threshold


def compute(records: Iterable[DecisionRecord], verdicts: Iterable[Verdict], *, since: datetime, until: datetime,
            unsure_below: float) -> Figures:
    """The figures of the decisions received in [since, until)."""
    chosen = sorted((r for r in records if since <= r.received_at < until), key=lambda r: r.received_at)
    fig = Figures(since=since, until=until, decisions=len(chosen))
    fig.by_action = dict(Counter(r.action.value if r.action else "none" for r in chosen).most_common())
    fig.by_category = dict(Counter(r.category.value for r in chosen).most_common())
    fig.by_source = dict(Counter(decision_source(r) for r in chosen).most_common())
    _feedback(fig, chosen, verdicts)
    _outcomes(fig, chosen)
    _reruns(fig, chosen)
    fig.emails = sum(len(r.notifications) for r in chosen)
    _llm(fig, chosen)
    _time_to_action(fig, chosen)
    _days(fig, chosen)
    fig.unmatched = _unmatched(chosen, unsure_below)
    return fig


def _feedback(fig: Figures, records: list[DecisionRecord], verdicts: Iterable[Verdict]) -> None:
    by_key = {r.key: r for r in records}
    latest: dict[str, Verdict] = {}
    for verdict in verdicts:  # several people may answer: the latest word per person counts, each once
        latest[f"{verdict.decision_key}|{verdict.person or ''}"] = verdict
    corrections: Counter[tuple[str | None, str, str]] = Counter()
    for verdict in latest.values():
        record = by_key.get(verdict.decision_key)
        if record is None:
            continue
        fig.feedback.add(verdict.correct)
        fig.feedback_by_category.setdefault(record.category.value, Tally()).add(verdict.correct)
        fig.feedback_by_source.setdefault(decision_source(record), Tally()).add(verdict.correct)
        if not verdict.correct and verdict.category and verdict.category != record.category.value:
            corrections[(record.rule_id, record.category.value, verdict.category)] += 1
    fig.corrections = [Corrected(rule_id=rule, decided=decided, corrected_to=to, count=n)
                       for (rule, decided, to), n in corrections.most_common()]


def _outcomes(fig: Figures, records: list[DecisionRecord]) -> None:
    # The learning loop's verdict: a rerun that failed again *the same way* refutes the decision; one that failed
    # differently (or never got a decision of its own) says nothing about it.
    for record in records:
        if record.outcome_verdict not in ("confirmed", "refuted"):
            continue
        right = record.outcome_verdict == "confirmed"
        fig.outcomes.add(right)
        fig.outcomes_by_category.setdefault(record.category.value, Tally()).add(right)
        fig.outcomes_by_source.setdefault(decision_source(record), Tally()).add(right)


def _reruns(fig: Figures, records: list[DecisionRecord]) -> None:
    for record in records:
        if not record.is_retry or record.mode != "act" or (record.repair_id is None and record.new_run_id is None):
            continue
        job = record.job_name or str(record.job_id)
        targets = [fig.retries_by_category.setdefault(record.category.value, Reruns()),
                   fig.retries_by_category_job.setdefault(record.category.value, {}).setdefault(job, Reruns()),
                   fig.resizes if record.action == Action.RETRY_WITH_NEW_PARAMS else fig.retries]
        for tally in targets:
            tally.started += 1
            if record.outcome == "succeeded":
                tally.succeeded += 1
            elif record.outcome == "failed":
                tally.failed += 1
            else:
                tally.pending += 1


def _llm(fig: Figures, records: list[DecisionRecord]) -> None:
    for record in records:
        analysis = record.analysis
        if analysis.source == "llm":
            fig.llm.calls += 1
            fig.llm.prompt_tokens += analysis.prompt_tokens
            fig.llm.completion_tokens += analysis.completion_tokens
            fig.llm.cost_usd += analysis.cost_usd
        elif analysis.source == "llm_cache":
            fig.llm.cache_hits += 1
        elif analysis.source == "rules_fallback":
            fig.llm.fallbacks += 1
    fig.llm.cost_usd = round(fig.llm.cost_usd, 6)


def _time_to_action(fig: Figures, records: list[DecisionRecord]) -> None:
    seconds = sorted(max((r.decided_at - r.received_at).total_seconds(), 0.0) for r in records if r.decided_at)
    if len(seconds) == 1:
        fig.time_to_action_p50 = fig.time_to_action_p95 = round(seconds[0], 3)
    elif seconds:
        cuts = quantiles(seconds, n=100, method="inclusive")
        fig.time_to_action_p50, fig.time_to_action_p95 = round(cuts[49], 3), round(cuts[94], 3)


def _days(fig: Figures, records: list[DecisionRecord]) -> None:
    days: dict[date, Day] = {}
    for record in records:
        day = days.setdefault(record.received_at.date(), Day(day=record.received_at.date()))
        day.decisions += 1
        day.cost_usd = round(day.cost_usd + (record.analysis.cost_usd if record.analysis.source == "llm" else 0), 6)
        if record.is_retry and record.outcome == "succeeded":
            day.reruns_succeeded += 1
        elif record.is_retry and record.outcome == "failed":
            day.reruns_failed += 1
    fig.days = [days[d] for d in sorted(days)]


def _unmatched(records: list[DecisionRecord], threshold: float) -> list[Unmatched]:
    groups: dict[str, list[DecisionRecord]] = defaultdict(list)
    for record in records:
        if is_unmatched(record, threshold) and record.category.value != "cancelled":
            groups[record.fingerprint or f"(no fingerprint) {record.category.value}"].append(record)
    rows = []
    for fingerprint, members in groups.items():
        last = members[-1]
        guesses = Counter(m.analysis.llm_category for m in members if m.analysis.llm_category)
        rows.append(Unmatched(
            fingerprint=fingerprint, count=len(members),
            jobs=sorted({m.job_name or str(m.job_id) for m in members}),
            rules_category=last.category.value,
            llm_category=guesses.most_common(1)[0][0] if guesses else None,
            excerpt=(last.excerpt or "")[:EXCERPT_CHARS],
        ))
    return sorted(rows, key=lambda u: (-u.count, u.fingerprint))
