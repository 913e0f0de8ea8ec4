"""What an LLM call cost, estimated from the tokens the service reports and configured prices per 1K tokens."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Prices:
    """USD per 1,000 tokens (LLM_PRICE_PROMPT_PER_1K, LLM_PRICE_COMPLETION_PER_1K)."""

    prompt_per_1k: float
    completion_per_1k: float

    @classmethod
    def from_settings(cls, settings) -> "Prices":
        return cls(settings.llm_price_prompt_per_1k, settings.llm_price_completion_per_1k)


def cost_usd(prompt_tokens: int, completion_tokens: int, prices: Prices) -> float:
    """Estimated cost of one call in USD, rounded to a millionth of a dollar."""
    cost = prompt_tokens / 1000 * prices.prompt_per_1k + completion_tokens / 1000 * prices.completion_per_1k
    return round(cost, 6)
