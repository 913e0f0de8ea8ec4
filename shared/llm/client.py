"""Azure OpenAI chat completions with structured output, through the `openai` package's AzureOpenAI client.

openai takes about 0.65 s to import (../shared/reference/azure.md §8), so it is imported when the first
call is made, never when function_app (or this module) is imported. Authentication: the API key
(AZURE_OPENAI_API_KEY, or the secret AZURE_OPENAI_API_KEY_SECRET_NAME from Key Vault / the environment),
else Microsoft Entra ID through azure-identity's bearer-token provider (role: Cognitive Services OpenAI User).

One call is bounded by LLM_TIMEOUT_SECONDS in all. The SDK's own retries are off; this module retries once,
on 429, 5xx and connection errors, when the wait (Retry-After, else 1 s) is short and fits in the time left,
and says why in the log. Every failure becomes an LLMError whose `reason` the decision records.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from shared.llm.exceptions import (
    LLMAuthError,
    LLMError,
    LLMInvalidAnswer,
    LLMRefused,
    LLMRequestRejected,
    LLMThrottled,
    LLMTimeout,
    LLMTruncated,
    LLMUnavailable,
)
from shared.llm.schema import FailureAnalysis

log = logging.getLogger(__name__)

ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"
MAX_RETRY_WAIT_SECONDS = 5.0  # a longer Retry-After falls back to the rules at once
DEFAULT_RETRY_WAIT_SECONDS = 1.0


@dataclass(frozen=True)
class Completion:
    """A valid answer and what it cost in tokens (as the service reports them)."""

    answer: FailureAnalysis
    prompt_tokens: int
    completion_tokens: int
    model: str | None
    attempts: int = 1


class _Retryable(Exception):
    def __init__(self, error: LLMError, wait: float) -> None:
        super().__init__(error.reason)
        self.error = error
        self.wait = wait


class ChatClient:
    """Sends one prompt, returns a validated FailureAnalysis or raises an LLMError."""

    def __init__(
        self,
        *,
        endpoint: str,
        deployment: str,
        api_version: str,
        timeout_seconds: float,
        max_completion_tokens: int,
        api_key: Callable[[], str | None],
        credential: Callable[[], Any] | None = None,
        on_auth_error: Callable[[], None] | None = None,
        max_retries: int = 1,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint
        self.deployment = deployment
        self.api_version = api_version
        self.timeout_seconds = timeout_seconds
        self.max_completion_tokens = max_completion_tokens
        self._api_key = api_key
        self._credential = credential
        self._on_auth_error = on_auth_error
        self.max_retries = max_retries
        self._sleep = sleep
        self._clock = clock
        self._client: Any = None
        self.auth_mode: str | None = None

    def complete(self, messages: list[dict[str, str]]) -> Completion:
        """One structured answer to `messages`, within timeout_seconds in all."""
        deadline = self._clock() + self.timeout_seconds
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise LLMTimeout(f"no answer within {self.timeout_seconds:g} s")
            try:
                completion = self._once(messages, remaining)
                return Completion(completion.answer, completion.prompt_tokens, completion.completion_tokens,
                                  completion.model, attempt)
            except _Retryable as retry:
                left = deadline - self._clock()
                if attempt > self.max_retries or retry.wait > MAX_RETRY_WAIT_SECONDS or retry.wait >= left - 1:
                    raise retry.error from retry.__cause__
                log.info("retrying the LLM call in %.1f s: %s", retry.wait, retry.error.reason)
                self._sleep(retry.wait)

    # --- one request --------------------------------------------------------------------------------
    def _once(self, messages: list[dict[str, str]], timeout: float) -> Completion:
        import openai  # noqa: PLC0415 - lazily: 0.65 s of import that the webhook path must not pay

        client = self._get_client()
        try:
            raw = client.chat.completions.with_raw_response.parse(
                model=self.deployment,
                messages=messages,
                response_format=FailureAnalysis,
                max_tokens=self.max_completion_tokens,
                temperature=0,
                timeout=timeout,
            )
        except openai.APITimeoutError as exc:
            raise LLMTimeout(f"no answer within {self.timeout_seconds:g} s") from exc
        except openai.APIConnectionError as exc:
            raise _Retryable(LLMUnavailable(f"cannot reach {self.endpoint}: {_cause(exc)}"),
                             DEFAULT_RETRY_WAIT_SECONDS) from exc
        except openai.RateLimitError as exc:
            wait = _retry_after(exc.response)
            shown = f"{wait:g} s" if wait is not None else "not given"
            raise _Retryable(LLMThrottled(f"throttled (HTTP 429, Retry-After {shown})"),
                             wait if wait is not None else DEFAULT_RETRY_WAIT_SECONDS) from exc
        except openai.InternalServerError as exc:
            raise _Retryable(LLMUnavailable(f"server error (HTTP {exc.status_code})"),
                             _retry_after(exc.response) or DEFAULT_RETRY_WAIT_SECONDS) from exc
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            self._client = None  # a rotated key is read again next time
            if self._on_auth_error is not None:
                self._on_auth_error()
            raise LLMAuthError(f"{self.auth_mode} refused (HTTP {exc.status_code})") from exc
        except openai.NotFoundError as exc:
            raise LLMRequestRejected(f"deployment {self.deployment!r} or API version {self.api_version} not found "
                                     f"(HTTP 404)") from exc
        except openai.APIStatusError as exc:
            raise LLMRequestRejected(f"request rejected (HTTP {exc.status_code}{_code(exc)})") from exc
        except Exception as exc:
            if _is_credential_error(exc):
                raise LLMAuthError(f"no Entra ID token: {_cause(exc)}") from exc
            raise

        prompt_tokens, completion_tokens, model = _usage(raw)
        billed = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
        try:
            completion = raw.parse()
        except openai.LengthFinishReasonError as exc:
            raise LLMTruncated(f"answer cut at max_tokens ({self.max_completion_tokens})", **billed) from exc
        except openai.ContentFilterFinishReasonError as exc:
            raise LLMRefused("answer stopped by the content filter", **billed) from exc
        except ValidationError as exc:
            raise LLMInvalidAnswer(f"answer does not fit the schema: {_first_error(exc)}", **billed) from exc
        message = completion.choices[0].message if completion.choices else None
        if message is None:
            raise LLMInvalidAnswer("answer has no choices", **billed)
        if message.refusal:
            raise LLMRefused(f"the model refused: {message.refusal[:120]}", **billed)
        if message.parsed is None:
            raise LLMInvalidAnswer("answer is empty", **billed)
        return Completion(message.parsed, prompt_tokens, completion_tokens, model)

    def _get_client(self) -> Any:
        if self._client is not None:
            return self._client
        from openai import AzureOpenAI  # noqa: PLC0415 - see _once

        try:
            key = self._api_key()
        except Exception as exc:  # noqa: BLE001 - SecretError and friends: the rules decide this time
            raise LLMAuthError(f"API key unreadable: {exc}") from exc
        common = {"azure_endpoint": self.endpoint, "api_version": self.api_version, "max_retries": 0,
                  "timeout": self.timeout_seconds}
        if key:
            self._client, self.auth_mode = AzureOpenAI(api_key=key, **common), "API key"
        else:
            from azure.identity import get_bearer_token_provider  # noqa: PLC0415

            if self._credential is None:
                raise LLMAuthError("no API key and no Entra ID credential")
            provider = get_bearer_token_provider(self._credential(), ENTRA_SCOPE)
            self._client, self.auth_mode = AzureOpenAI(azure_ad_token_provider=provider, **common), "Entra ID token"
        return self._client


def _usage(raw: Any) -> tuple[int, int, str | None]:
    try:
        body = raw.http_response.json()
    except ValueError:
        return 0, 0, None
    if not isinstance(body, dict):
        return 0, 0, None
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0), body.get("model")


def _retry_after(response: Any) -> float | None:
    """Seconds from retry-after-ms or Retry-After (seconds); None when absent or a date."""
    headers = getattr(response, "headers", None) or {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            continue
    return None


def _code(exc: Any) -> str:
    body = getattr(exc, "body", None)
    code = body.get("code") if isinstance(body, dict) else None
    return f", {code}" if code else ""


def _cause(exc: BaseException) -> str:
    inner = exc.__cause__ or exc
    return f"{type(inner).__name__}: {str(inner).splitlines()[0] if str(inner) else ''}".rstrip(": ")


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "answer"
    return f"{where}: {err.get('msg', 'invalid')}"


def _is_credential_error(exc: BaseException) -> bool:
    from azure.core.exceptions import ClientAuthenticationError  # noqa: PLC0415 - azure.core is loaded by then

    return isinstance(exc, ClientAuthenticationError)
