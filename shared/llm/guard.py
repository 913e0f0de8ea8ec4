"""Guard rails: the LLM's answer is untrusted input. What of it may change the decision, and how far.

- Category: the LLM may replace the rules' category only as LLM_MAY_OVERRIDE allows (default "unsure":
  when the rules said unknown or were below LLM_CONFIDENCE_THRESHOLD), only when the model is at least as
  confident as the new category's bar in the category table (shared/categories.toml; never below the
  threshold, higher for a category that starts a rerun than for one that only changes the email), never
  into a category without a bar ("cancelled": IGNORE would silence a failure; cancellation is read from
  the run's state, not from text), and never from a category the rules place where a rerun cannot help
  (permission, code, data, quota) into one that reruns. So injected text cannot turn a permission failure
  into a retry.
- Action: always FIRST_ACTION of the resulting category; the model is not asked for one. The decision
  step then applies the retry budget and the unsure policy as for any rule.
- Parameters: kept only for RETRY_WITH_NEW_PARAMS, and clamped by the resize bounds (shared.resize): node
  types on a ladder and at most one step from the current one, workers at most one step and never above
  RESIZE_MAX_WORKERS, spark_conf keys in RESIZE_ALLOWED_SPARK_CONF with values inside each key's range or
  enumeration (spark_conf_bounds.toml).
- Text: links removed (an injected error could otherwise put a phishing link in an email signed by the
  agent), secrets masked, length bounded.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from shared.llm.conf_bounds import check_value
from shared.llm.schema import FailureAnalysis, SuggestedParameters, clean_text
from shared.resize import ResizeBounds, next_node_type
from shared.taxonomy import FIRST_ACTION, NEVER_RETRY, OVERRIDE_BAR, RERUNS, Action, Category

if TYPE_CHECKING:
    from shared.classify import Classification

OverrideMode = Literal["unsure", "unknown", "never"]
# What the LLM step did to the decision (Analysis.llm_outcome; decide turns it into a ReasonCode).
Outcome = Literal["not_asked", "explained", "agreed", "override", "refused", "failed", "budget_spent"]

_LINK = re.compile(r"(?i)\b(?:https?|ftp|file)://[^\s)>\]]+|\bwww\.[^\s)>\]]+")


@dataclass(frozen=True)
class OverridePolicy:
    """LLM_MAY_OVERRIDE and LLM_CONFIDENCE_THRESHOLD."""

    mode: OverrideMode = "unsure"
    threshold: float = 0.75


@dataclass(frozen=True)
class Verdict:
    """What the guard rails made of one answer."""

    classification: "Classification"
    overridden: bool
    outcome: Outcome
    root_cause: str
    suggested_fix: str
    suggested_parameters: dict[str, Any]
    notes: list[str]


def bar_for(category: Category, policy: OverridePolicy) -> float | None:
    """The LLM confidence needed to move a decision into `category` (None: never)."""
    bar = OVERRIDE_BAR.get(category)
    return None if bar is None else max(bar, policy.threshold)


def override_refusal(rules: "Classification", answer: FailureAnalysis, policy: OverridePolicy) -> str | None:
    """Why the answer's category may not replace the rules' one; None when it may."""
    proposed = Category(answer.category)
    if policy.mode == "never":
        return "LLM_MAY_OVERRIDE=never"
    if rules.category is not Category.UNKNOWN:
        if policy.mode == "unknown":
            return f"the rules said {rules.category.value}, and LLM_MAY_OVERRIDE=unknown"
        if rules.confidence >= policy.threshold:
            return f"the rules were sure ({rules.confidence:.2f} ≥ {policy.threshold:.2f})"
    bar = bar_for(proposed, policy)
    if bar is None:
        if proposed is Category.CANCELLED:
            return "the LLM may not call a failure cancelled (IGNORE); cancellation is read from the run's state"
        return f"the LLM may not move a decision to {proposed.value}"
    if rules.category in NEVER_RETRY and FIRST_ACTION[proposed] in RERUNS:
        return (f"the rules place it in {rules.category.value}, which a rerun cannot fix; a rerun needs the "
                "rules' agreement")
    if answer.confidence < bar:
        return f"the LLM's confidence {answer.confidence:.2f} is below the bar for {proposed.value} ({bar:.2f})"
    return None


def apply_answer(
    rules: "Classification",
    answer: FailureAnalysis,
    policy: OverridePolicy,
    bounds: ResizeBounds,
    cluster: dict[str, Any] | None = None,
    *,
    redact: Any = None,
) -> Verdict:
    """The classification after the answer (the rules' unless the policy allows a change), and the answer's
    text and parameters made safe to record and show."""
    notes: list[str] = []
    classification, overridden = rules, False
    proposed = Category(answer.category)
    sure = rules.category is not Category.UNKNOWN and rules.confidence >= policy.threshold
    outcome: Outcome = "explained" if sure else "refused"
    if proposed is rules.category and not sure:
        bar = bar_for(proposed, policy)
        if bar is not None and answer.confidence >= bar and policy.mode == "unsure":
            outcome = "agreed"  # two independent readings agree above the bar: the decision is sure
            classification = dataclasses.replace(
                rules, confidence=answer.confidence,
                evidence=(*rules.evidence, f"LLM agrees: {proposed.value} ({answer.confidence:.2f}); the rules "
                                           f"said {rules.confidence:.2f}"))
        else:
            notes.append(f"the LLM agrees on {proposed.value}, but at {answer.confidence:.2f}, below its bar "
                         f"({'none' if bar is None else f'{bar:.2f}'}): the decision stays unsure")
    elif proposed is not rules.category:
        refusal = override_refusal(rules, answer, policy)
        if refusal:
            notes.append(f"kept the rules' {rules.category.value}, not the LLM's {proposed.value}: {refusal}")
        else:
            overridden, outcome = True, "override"
            classification = dataclasses.replace(
                rules,
                category=proposed,
                action=FIRST_ACTION[proposed],
                confidence=answer.confidence,
                evidence=(*rules.evidence, f"LLM: {proposed.value} ({answer.confidence:.2f}); the rules said "
                                           f"{rules.category.value} ({rules.confidence:.2f})"),
            )

    parameters: dict[str, Any] = {}
    if answer.suggested_parameters is not None and _suggests_anything(answer.suggested_parameters):
        if classification.action is Action.RETRY_WITH_NEW_PARAMS:
            parameters, clamp_notes = clamp_parameters(answer.suggested_parameters, bounds, cluster)
            notes.extend(clamp_notes)
        else:
            notes.append(f"suggested parameters ignored: the action is {classification.action.value}")
    return Verdict(
        classification=classification,
        overridden=overridden,
        outcome=outcome,
        root_cause=safe_text(answer.root_cause, redact),
        suggested_fix=safe_text(answer.suggested_fix, redact),
        suggested_parameters=parameters,
        notes=notes,
    )


def clamp_parameters(
    params: SuggestedParameters, bounds: ResizeBounds, cluster: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The suggestion inside the resize bounds, and a note for every part dropped or lowered.

    With the current cluster spec, one step means what plan_resize does: the next node type on its ladder,
    or more workers (up to double, at least one more, at most RESIZE_MAX_WORKERS), not both. Without it one
    step cannot be checked, so node types and worker counts are dropped; allowed spark_conf still passes.
    """
    out: dict[str, Any] = {}
    notes: list[str] = []
    cluster = cluster or {}
    pool = bool(cluster.get("instance_pool_id"))
    current_node = cluster.get("node_type_id")

    node = params.node_type_id
    if node and node != current_node:
        ladders = [n for ladder in bounds.ladders for n in ladder]
        if node not in ladders:
            notes.append(f"node type {node!r} refused: not on a resize ladder (RESIZE_NODE_LADDERS)")
        elif pool:
            notes.append(f"node type {node!r} refused: the cluster takes its nodes from an instance pool")
        elif not current_node:
            notes.append(f"node type {node!r} refused: the current node type is unknown, so one step cannot be checked")
        elif node != next_node_type(current_node, bounds.ladders):
            step = next_node_type(current_node, bounds.ladders)
            notes.append(f"node type {node!r} refused: more than one step from {current_node} "
                         f"(next: {step or 'none, top of the ladder'})")
        else:
            out["node_type_id"] = node

    for field, current in (
        ("num_workers", cluster.get("num_workers")),
        ("autoscale_max_workers", (cluster.get("autoscale") or {}).get("max_workers")),
    ):
        wanted = getattr(params, field)
        if wanted is None:
            continue
        if "node_type_id" in out:
            notes.append(f"{field}={wanted} refused: one step per attempt, and the node type changes already")
            continue
        value, note = _clamp_workers(field, wanted, current, bounds.max_workers)
        if note:
            notes.append(note)
        if value is not None:
            out[field] = value

    conf: dict[str, str] = {}
    for entry in params.spark_conf:
        if entry.key not in bounds.allowed_spark_conf:
            notes.append(f"spark_conf {entry.key!r} refused: not in RESIZE_ALLOWED_SPARK_CONF")
            continue
        value, problem = check_value(entry.key, entry.value)
        if problem:
            notes.append(f"spark_conf {entry.key!r} refused: {problem}")
        else:
            conf[entry.key] = value
    if conf:
        out["spark_conf"] = conf
    return out, notes


def _clamp_workers(field: str, wanted: int, current: Any, max_workers: int) -> tuple[int | None, str | None]:
    if wanted < 1:
        return None, f"{field}={wanted} refused: not a worker count"
    if current is None:
        return None, f"{field}={wanted} refused: the current size is unknown, so one step cannot be checked"
    current = int(current)
    if wanted <= current:
        return None, f"{field}={wanted} refused: a resize only grows the cluster (now {current})"
    step = min(max_workers, max(current + 1, current * 2))
    if step <= current:
        return None, f"{field}={wanted} refused: already at RESIZE_MAX_WORKERS ({max_workers})"
    if wanted > step:
        why = "RESIZE_MAX_WORKERS" if step == max_workers else f"one step from {current}"
        return step, f"{field}={wanted} lowered to {step} ({why})"
    return wanted, None


def safe_text(text: str, redact: Any = None) -> str:
    """Model-written text fit for a record and an email: no links, no secrets, bounded."""
    text = _LINK.sub("[link removed]", text)
    if redact is not None:
        text = redact(text)
    return clean_text(text)


def _suggests_anything(params: SuggestedParameters) -> bool:
    return bool(params.node_type_id or params.num_workers is not None
                or params.autoscale_max_workers is not None or params.spark_conf)
