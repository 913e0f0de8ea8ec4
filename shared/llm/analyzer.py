"""The LLM analyzer: the rules decide, the model explains what they miss (k8sgpt's split).

`Analyzer.refine(signals, classification, context)` is the pipeline's Analyzer. It asks Azure OpenAI only
when the rules are unsure (category unknown, or confidence below LLM_CONFIDENCE_THRESHOLD), or, with
LLM_ASK_FOR_EMAILS, when a person must fix the failure and needs the root cause and fix written out.
Before asking it looks in the answer cache (same failure fingerprint, model and prompt version) and checks
the daily budget. The answer passes the guard rails (guard.py) before it may change anything. Whatever
goes wrong (timeout, outage, throttling, refusal, truncated or malformed answer, spent budget, even a bug
here) the rules' classification stands and the Analysis says why (source "rules_fallback").

Nothing here imports openai until the first call (client.py), and nothing here imports shared.wiring (which
builds the analyzer): the dependency runs one way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.decision import Analysis, utcnow
from shared.llm.budget import DailyBudget
from shared.llm.cache import AnswerCache, cache_key, detail_digest
from shared.llm.client import ChatClient, Completion
from shared.llm.cost import Prices, cost_usd
from shared.llm.exceptions import LLMError
from shared.llm.guard import OverridePolicy, apply_answer
from shared.llm.prompt import Prompt, build_prompt, prompt_version, trim_middle
from shared.llm.schema import FailureAnalysis
from shared.resize import ResizeBounds
from shared.taxonomy import Action, Category

if TYPE_CHECKING:
    from shared.classify import Classification, FailureSignals
    from shared.settings import Settings
    from shared.state import StateStore

log = logging.getLogger(__name__)

__all__ = ["Analyzer", "build_analyzer", "build_analyzer_from_env", "cli_classifier", "failure_prompt"]

MAX_RAW_TEXT_CHARS = 4000  # when the classifier gave no excerpt: never more of the raw log than this
_EXPLAIN_ACTIONS = frozenset({Action.SEND_EMAIL, Action.ESCALATE})


def _redact(text: str) -> str:
    from shared.redaction import redact

    return redact(text)


class Analyzer:
    """Refines a rules classification with Azure OpenAI, within the guard rails, the cache and the budget."""

    def __init__(
        self,
        *,
        client: ChatClient,
        model: str,
        threshold: float,
        policy: OverridePolicy,
        bounds: ResizeBounds,
        prices: Prices,
        cache: AnswerCache,
        budget: DailyBudget,
        max_prompt_tokens: int,
        ask_for_emails: bool = False,
        redact: Callable[[str], str] = _redact,
    ) -> None:
        self.client = client
        self.model = model
        self.threshold = threshold
        self.policy = policy
        self.bounds = bounds
        self.prices = prices
        self.cache = cache
        self.budget = budget
        self.max_prompt_tokens = max_prompt_tokens
        self.ask_for_emails = ask_for_emails
        self.redact = redact

    # --- when to ask ----------------------------------------------------------------------------------
    def why_ask(self, classification: "Classification") -> str | None:
        """Why the LLM should see this failure; None when the rules' answer is enough."""
        if classification.category is Category.UNKNOWN:
            return "the rules found no category"
        if classification.confidence < self.threshold:
            return f"the rules' confidence {classification.confidence:.2f} is below {self.threshold:.2f}"
        if self.ask_for_emails and classification.action in _EXPLAIN_ACTIONS:
            return "a person must fix it (LLM_ASK_FOR_EMAILS): the LLM writes the root cause and fix"
        return None

    # --- the pipeline's Analyzer ----------------------------------------------------------------------
    def refine(
        self, signals: "FailureSignals", classification: "Classification", context: dict[str, Any]
    ) -> tuple["Classification", Analysis]:
        """The classification to decide on and the human part of the diagnosis. Never raises."""
        try:
            return self._refine(signals, classification, context or {})
        except Exception as exc:  # noqa: BLE001 - the LLM step must never stop a decision: the rules stand
            log.exception("LLM analysis failed unexpectedly; the rules decide")
            return classification, Analysis(source="rules_fallback", model=self.model, llm_outcome="failed",
                                            fallback_reason=f"internal error: {type(exc).__name__}")

    def _refine(
        self, signals: "FailureSignals", classification: "Classification", context: dict[str, Any]
    ) -> tuple["Classification", Analysis]:
        why = self.why_ask(classification)
        if why is None:
            return classification, Analysis(source="rules", llm_outcome="not_asked")
        extra = {"job_name": context.get("job_name"), "category": classification.category.value,
                 "confidence": classification.confidence}
        version = prompt_version()
        key = cache_key(model=self.model, prompt_version=version,
                        fingerprint=classification.fingerprint or _fallback_fingerprint(signals, classification),
                        detail=detail_digest(classification.excerpt or signals.text or ""),
                        rules_category=classification.category.value)
        cached = self.cache.get(key)
        if cached is not None:
            log.info("LLM answer from the cache (%s)", why, extra=extra)
            return self._apply(classification, cached, context, source="llm_cache", version=version)

        spent = self.budget.spent()
        if spent:
            return classification, Analysis(source="rules_fallback", fallback_reason=spent, model=self.model,
                                            prompt_version=version, llm_outcome="budget_spent")

        prompt = self.prompt_for(signals, classification, context)
        try:
            completion = self.client.complete(prompt.messages)
        except LLMError as exc:
            cost = cost_usd(exc.prompt_tokens, exc.completion_tokens, self.prices)
            self.budget.charge(cost)
            log.warning("LLM analysis failed, the rules decide: %s", exc.reason,
                        extra={**extra, "fallback_reason": exc.reason})
            return classification, Analysis(
                source="rules_fallback", fallback_reason=exc.reason, model=self.model, prompt_version=version,
                llm_outcome="failed", prompt_tokens=exc.prompt_tokens, completion_tokens=exc.completion_tokens,
                cost_usd=cost,
            )
        cost = cost_usd(completion.prompt_tokens, completion.completion_tokens, self.prices)
        self.budget.charge(cost)
        self.cache.put(key, completion.answer, model=self.model, prompt_version=version)
        log.info("LLM consulted (%s): %s, %d+%d tokens, $%.5f", why, completion.answer.category,
                 completion.prompt_tokens, completion.completion_tokens, cost,
                 extra={**extra, "prompt_tokens": completion.prompt_tokens,
                        "estimated_prompt_tokens": prompt.estimated_tokens})
        return self._apply(classification, completion.answer, context, source="llm", version=version,
                           completion=completion, cost=cost)

    def prompt_for(
        self, signals: "FailureSignals", classification: "Classification", context: dict[str, Any]
    ) -> Prompt:
        """The prompt this failure is sent with."""
        return failure_prompt(signals, classification, context, max_prompt_tokens=self.max_prompt_tokens,
                              redact=self.redact)

    def _apply(
        self,
        classification: "Classification",
        answer: FailureAnalysis,
        context: dict[str, Any],
        *,
        source: str,
        version: str,
        completion: Completion | None = None,
        cost: float = 0.0,
    ) -> tuple["Classification", Analysis]:
        cluster = context.get("cluster") if isinstance(context.get("cluster"), dict) else None
        verdict = apply_answer(classification, answer, self.policy, self.bounds, cluster, redact=self.redact)
        for note in verdict.notes:
            log.info("LLM guard rail: %s", note, extra={"job_name": context.get("job_name")})
        analysis = Analysis(
            root_cause=verdict.root_cause or None,
            suggested_fix=verdict.suggested_fix or None,
            severity=answer.severity,
            source=source,  # type: ignore[arg-type]
            model=(completion.model if completion and completion.model else self.model),
            prompt_tokens=completion.prompt_tokens if completion else 0,
            completion_tokens=completion.completion_tokens if completion else 0,
            cost_usd=cost,
            llm_category=answer.category,
            llm_confidence=answer.confidence,
            suggested_parameters=verdict.suggested_parameters,
            guard_notes=verdict.notes,
            prompt_version=version,
            llm_outcome=verdict.outcome,
        )
        return verdict.classification, analysis


def failure_prompt(
    signals: "FailureSignals",
    classification: "Classification",
    context: dict[str, Any],
    *,
    max_prompt_tokens: int,
    redact: Callable[[str], str] = _redact,
) -> Prompt:
    """The prompt for one failure: the classifier's excerpt (or, without one, at most MAX_RAW_TEXT_CHARS of
    the text, head and tail), the run's state, the rules' verdict and the job context.
    (`python -m shared llm-report` measures it on a labeled set.)"""
    text = classification.excerpt or trim_middle(signals.text or "", MAX_RAW_TEXT_CHARS)
    return build_prompt(
        text,
        context=context,
        run_state=describe_run_state(signals),
        rules=describe_rules(classification),
        max_prompt_tokens=max_prompt_tokens,
        redact=redact,
    )


def describe_run_state(signals: "FailureSignals") -> str:
    """'result FAILED; termination RUN_EXECUTION_ERROR (CLIENT_ERROR); cluster DRIVER_UNREACHABLE (...)'."""
    parts = []
    if signals.result_state or signals.life_cycle_state:
        parts.append("result " + "/".join(s for s in (signals.life_cycle_state, signals.result_state) if s))
    if signals.termination_code:
        parts.append(f"termination {signals.termination_code}"
                     + (f" ({signals.termination_type})" if signals.termination_type else ""))
    if signals.cluster_reason_code:
        parts.append(f"cluster {signals.cluster_reason_code}"
                     + (f" ({signals.cluster_reason_type})" if signals.cluster_reason_type else ""))
    return "; ".join(parts) or "(not given)"


def describe_rules(classification: "Classification") -> str:
    """The rules' verdict as the prompt shows it."""
    text = f"{classification.category.value} (confidence {classification.confidence:.2f}"
    if classification.rule_id:
        text += f", rule {classification.rule_id}"
    text += ")"
    # One line of evidence: the rest is usually a line of the excerpt the prompt carries anyway.
    evidence = [e for e in classification.evidence if e.strip()][:1]
    if evidence:
        text += "; evidence: " + evidence[0]
    return text


def _fallback_fingerprint(signals: "FailureSignals", classification: "Classification") -> str:
    # Only when the classifier gave none: the digest of the text alone, so reruns still share a key.
    return "text:" + detail_digest(classification.excerpt or signals.text or "")


# --- construction -------------------------------------------------------------------------------------

def build_analyzer(
    settings: "Settings",
    *,
    secrets: Any = None,
    table_service_client: Any = None,
    credential: Any = None,
    clock: Callable[[], datetime] = utcnow,
    sleep: Callable[[float], None] = time.sleep,
) -> Analyzer | None:
    """The Analyzer for these settings; None when Azure OpenAI is not configured (rules only).

    `secrets` (a SecretProvider) supplies the API key when AZURE_OPENAI_API_KEY is not set; without a key,
    Entra ID (`credential`, default: the app's managed identity / DefaultAzureCredential). The cache and
    the daily budget live in the state table when `table_service_client` is given, else in memory.
    `clock` and `sleep` are for tests (day boundaries, cache expiry, retry waits).
    """
    if not (settings.azure_openai_endpoint and settings.azure_openai_deployment):
        return None
    store = _state_store(settings, table_service_client)

    def api_key() -> str | None:
        if secrets is None:
            direct = settings.azure_openai_api_key
            return direct.get_secret_value() if direct is not None and direct.get_secret_value() else None
        from shared.secrets import resolve_secret

        return resolve_secret(settings, secrets, "azure_openai_api_key")

    def on_auth_error() -> None:
        if secrets is not None:
            secrets.invalidate(settings.azure_openai_api_key_secret_name)

    client = ChatClient(
        endpoint=settings.azure_openai_endpoint,
        deployment=settings.azure_openai_deployment,
        api_version=settings.azure_openai_api_version,
        timeout_seconds=settings.llm_timeout_seconds,
        max_completion_tokens=settings.llm_max_completion_tokens,
        api_key=api_key,
        credential=(lambda: credential) if credential is not None else (lambda: _default_credential(settings)),
        on_auth_error=on_auth_error,
        sleep=sleep,
    )
    return Analyzer(
        client=client,
        model=settings.azure_openai_model or settings.azure_openai_deployment,
        threshold=settings.llm_confidence_threshold,
        policy=OverridePolicy(settings.llm_may_override, settings.llm_confidence_threshold),
        bounds=ResizeBounds(settings.node_ladders, settings.resize_max_workers,
                            frozenset(settings.resize_allowed_spark_conf)),
        prices=Prices.from_settings(settings),
        cache=AnswerCache(store, ttl=timedelta(hours=settings.llm_cache_ttl_hours), clock=clock),
        budget=DailyBudget(store, max_calls=settings.llm_daily_max_calls,
                           max_cost_usd=settings.llm_daily_budget_usd, clock=clock),
        max_prompt_tokens=settings.llm_max_prompt_tokens,
        ask_for_emails=settings.llm_ask_for_emails,
    )


def build_analyzer_from_env(env: Mapping[str, str] | None = None) -> Analyzer | None:
    """The Analyzer from the environment (for `python -m shared classify --llm`), or None when Azure OpenAI
    is not configured. Secrets come from Key Vault or the environment as in the app; the cache and budget
    are in memory."""
    from shared.secrets import build_secret_provider
    from shared.settings import load_settings

    settings = load_settings(env, require=("llm",))
    if not (settings.azure_openai_endpoint and settings.azure_openai_deployment):
        return None
    return build_analyzer(settings, secrets=build_secret_provider(settings))


Classifier = Callable[["FailureSignals"], "Classification"]


def cli_classifier(rules: Classifier) -> Classifier:
    """The seam of `python -m shared classify --llm`: `rules` refined by the analyzer built from the environment.

    Raises RuntimeError when Azure OpenAI is not configured (or the settings are invalid); the command then
    uses the rules alone. Each failure is refined without job context; an LLM that is down, slow or over
    budget leaves the rules' answer, as in the app.
    """
    from shared.exceptions import ConfigError

    try:
        analyzer = build_analyzer_from_env()
    except ConfigError as exc:
        raise RuntimeError(str(exc)) from exc
    if analyzer is None:
        raise RuntimeError("AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_DEPLOYMENT are not set")

    def classify_with_llm(signals: "FailureSignals") -> "Classification":
        return analyzer.refine(signals, rules(signals), {})[0]

    return classify_with_llm


def _state_store(settings: "Settings", table_service_client: Any) -> "StateStore | None":
    if table_service_client is None:
        return None
    from shared.state import TableStateStore

    try:
        table_service_client.create_table_if_not_exists(settings.state_table)
        return TableStateStore(table_service_client.get_table_client(settings.state_table))
    except Exception as exc:  # noqa: BLE001 - cache and budget then work per worker, in memory
        log.warning("LLM cache and budget kept in memory only: state table %s unusable: %s",
                    settings.state_table, exc)
        return None


def _default_credential(settings: "Settings") -> Any:
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if settings.azure_client_id:
        return ManagedIdentityCredential(client_id=settings.azure_client_id)
    return DefaultAzureCredential()
