"""Why an LLM call gave nothing usable. Every one of them means "decide with the rules"; `reason` says why.

The openai SDK's errors are translated in client.py (`raise ... from exc`), so the rest of the package never
imports openai and the decision record names the failure in a few words.
"""

from __future__ import annotations

from shared.exceptions import AgentError


class LLMError(AgentError):
    """The LLM gave no usable answer. `reason` is recorded as the analysis' fallback_reason."""

    def __init__(self, reason: str, *, prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        # Tokens the service reports for a call that still failed (a truncated or malformed reply is billed).
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens


class LLMTimeout(LLMError):
    """No answer within LLM_TIMEOUT_SECONDS."""


class LLMUnavailable(LLMError):
    """The service could not be reached, or answered with a server error."""


class LLMThrottled(LLMUnavailable):
    """429: the deployment's rate limit, and Retry-After longer than the time left."""


class LLMAuthError(LLMError):
    """The key or the identity was refused, or the API key could not be read."""


class LLMRequestRejected(LLMError):
    """The service refused the request itself (400, 404 deployment, content filter on the prompt)."""


class LLMRefused(LLMError):
    """The model declined to answer (structured-output refusal, content filter on the answer)."""


class LLMTruncated(LLMError):
    """The answer hit max_tokens before the JSON was complete."""


class LLMInvalidAnswer(LLMError):
    """The answer is not JSON, or does not fit the schema."""
