"""Recommendations in plain words, each backed by the numbers that triggered it.

The thresholds are data (THRESHOLDS): a recommendation needs enough cases to mean something, and says the
cases it counted, so a reader can judge it.
"""

from __future__ import annotations

from pydantic import BaseModel

from shared.report.figures import Figures, Reruns

THRESHOLDS = {
    "min_reruns": 5,            # reruns of one category or job before its success rate is judged
    "low_retry_success": 0.34,  # below this share of reruns succeeding, retrying is mostly waste
    "min_corrections": 2,       # corrections of one rule's category before the rule is questioned
    "min_unmatched": 3,         # failures of one fingerprint with no sure rule before a rule is asked for
    "low_accuracy": 0.8,        # verified accuracy below this for a decision source
    "min_verified": 5,          # verified decisions of a source before its accuracy is judged
    "slow_p95_seconds": 120.0,  # time from failure to action
}


class Recommendation(BaseModel):
    """One piece of advice and the figures behind it."""

    kind: str
    text: str
    numbers: dict[str, float | int | str]


def recommend(fig: Figures, *, max_retries: int) -> list[Recommendation]:
    """Advice drawn from the window's figures, most useful first."""
    out: list[Recommendation] = []
    out += _weak_retries(fig, max_retries)
    out += _corrected_rules(fig)
    out += _unmatched(fig)
    out += _weak_sources(fig)
    if fig.resizes.started >= THRESHOLDS["min_reruns"] and _low(fig.resizes):
        out.append(Recommendation(
            kind="resize", numbers=_counts(fig.resizes),
            text=f"Resized reruns succeeded {fig.resizes.succeeded} of {fig.resizes.succeeded + fig.resizes.failed} "
                 "times: the node-type ladder may end too low, or these failures are not about memory.",
        ))
    p95 = fig.time_to_action_p95
    if p95 is not None and p95 > THRESHOLDS["slow_p95_seconds"]:
        out.append(Recommendation(
            kind="latency", numbers={"p95_seconds": p95, "p50_seconds": fig.time_to_action_p50 or 0},
            text=f"Time from failure to action was {p95:.0f} s at p95: check the queue backlog and the Jobs API "
                 "latency, and whether webhooks are configured (the poller alone is slower).",
        ))
    return out


def _low(reruns: Reruns) -> bool:
    rate = reruns.success_rate
    return rate is not None and rate < THRESHOLDS["low_retry_success"]


def _counts(reruns: Reruns) -> dict[str, float | int | str]:
    return {"started": reruns.started, "succeeded": reruns.succeeded, "failed": reruns.failed}


def _weak_retries(fig: Figures, max_retries: int) -> list[Recommendation]:
    out = []
    for category, reruns in sorted(fig.retries_by_category.items()):
        if reruns.started >= THRESHOLDS["min_reruns"] and _low(reruns):
            # The job that reran most in this category, if it failed most of its reruns too, is where a lower
            # budget saves most; otherwise the advice is for the category as a whole.
            jobs = sorted(fig.retries_by_category_job.get(category, {}).items(), key=lambda kv: (-kv[1].failed, kv[0]))
            worst = jobs[0][0] if jobs and jobs[0][1].started >= 2 and _low(jobs[0][1]) else None
            lower = max(max_retries - 2, 1)
            where = f" for job {worst}" if worst else ""
            out.append(Recommendation(
                kind="retry_budget", numbers={**_counts(reruns), "category": category},
                text=f"{category.capitalize()} retries succeeded {reruns.succeeded} of "
                     f"{reruns.succeeded + reruns.failed} times in this window: consider MAX_RETRIES={lower}{where} "
                     f"(tag ai_agent_max_retries), or look for a cause a rerun cannot fix.",
            ))
    return out


def _corrected_rules(fig: Figures) -> list[Recommendation]:
    return [
        Recommendation(
            kind="rule_review", numbers={"count": c.count, "decided": c.decided, "corrected_to": c.corrected_to,
                                         "rule": c.rule_id or "-"},
            text=f"Category {c.decided} was corrected to {c.corrected_to} {c.count} times: review rule "
                 f"{c.rule_id or '(no rule: the LLM decided)'}.",
        )
        for c in fig.corrections if c.count >= THRESHOLDS["min_corrections"]
    ]


def _unmatched(fig: Figures) -> list[Recommendation]:
    return [
        Recommendation(
            kind="new_rule", numbers={"count": u.count, "fingerprint": u.fingerprint},
            text=f"{u.count} failures ({', '.join(u.jobs[:3])}{'…' if len(u.jobs) > 3 else ''}) had no sure rule "
                 f"(fingerprint {u.fingerprint[:60]}): write one"
                 + (f"; the LLM called them {u.llm_category}." if u.llm_category else "."),
        )
        for u in fig.unmatched if u.count >= THRESHOLDS["min_unmatched"]
    ]


def _weak_sources(fig: Figures) -> list[Recommendation]:
    out = []
    for source, tally in sorted(fig.feedback_by_source.items()):
        rate = tally.rate
        if tally.verified >= THRESHOLDS["min_verified"] and rate is not None and rate < THRESHOLDS["low_accuracy"]:
            out.append(Recommendation(
                kind="accuracy", numbers={"source": source, "verified": tally.verified, "correct": tally.correct},
                text=f"Decisions by {source.replace('_', ' ')} were right {tally.correct} of {tally.verified} times "
                     "by people's feedback: read the corrections below before trusting it with reruns.",
            ))
    return out
