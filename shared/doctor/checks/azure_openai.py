"""Azure OpenAI: the endpoint and credentials (models list), or with --llm-call the deployment itself."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shared.doctor.checks.key_vault import secret_fix
from shared.doctor.context import (
    NOT_READY,
    READY,
    SKIPPED,
    CheckResult,
    DoctorContext,
    azure_credential,
    first_line,
    shown,
)
from shared.exceptions import SecretError
from shared.secrets import resolve_secret


def check_openai(ctx: DoctorContext) -> Iterable[CheckResult]:
    s = ctx.settings
    problems = s.problems_for("llm")
    if problems:
        yield CheckResult("Azure OpenAI", NOT_READY, "; ".join(map(str, problems)),
                          "set both AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_DEPLOYMENT, or neither (rules only)")
        return
    if not s.azure_openai_endpoint:
        yield CheckResult("Azure OpenAI", SKIPPED, "AZURE_OPENAI_ENDPOINT not set: rules only, no LLM",
                          "optional: set AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_DEPLOYMENT", required=False)
        return
    try:
        key = resolve_secret(s, ctx.secret_provider(), "azure_openai_api_key")
    except SecretError as exc:
        yield CheckResult("Azure OpenAI", NOT_READY, f"API key: {exc}", secret_fix(exc))
        return
    import openai

    auth: dict[str, Any]
    if key:
        auth, how = {"api_key": key}, f"key {shown(key)}"
    else:
        from azure.identity import get_bearer_token_provider

        auth = {"azure_ad_token_provider": get_bearer_token_provider(
            azure_credential(s), "https://cognitiveservices.azure.com/.default")}
        how = "Entra ID"
    try:
        client = openai.AzureOpenAI(azure_endpoint=s.azure_openai_endpoint, api_version=s.azure_openai_api_version,
                                    max_retries=0, timeout=ctx.timeout, **auth)
        if ctx.llm_call:
            client.chat.completions.create(model=s.azure_openai_deployment, max_tokens=1,
                                           messages=[{"role": "user", "content": "ping"}])
            answered = f"deployment {s.azure_openai_deployment!r} answered a 1-token call"
        else:
            count = len(list(client.models.list().data))
            answered = (f"{count} models listed; deployment {s.azure_openai_deployment!r} not called "
                        "(--llm-call checks it)")
    except openai.AuthenticationError as exc:
        yield CheckResult("Azure OpenAI", NOT_READY, f"credentials refused ({how}): HTTP {exc.status_code}",
                          "check AZURE_OPENAI_API_KEY (or give the identity Cognitive Services OpenAI User)")
        return
    except openai.PermissionDeniedError as exc:
        yield CheckResult("Azure OpenAI", NOT_READY, f"permission denied ({how}): HTTP {exc.status_code}",
                          "give the app's identity the Cognitive Services OpenAI User role")
        return
    except openai.APIConnectionError as exc:
        yield CheckResult("Azure OpenAI", NOT_READY, f"cannot reach {s.azure_openai_endpoint}: {type(exc).__name__}",
                          "check AZURE_OPENAI_ENDPOINT")
        return
    except openai.NotFoundError:
        what = f"deployment {s.azure_openai_deployment!r}" if ctx.llm_call else "the models list"
        yield CheckResult("Azure OpenAI", NOT_READY, f"{what} not found at {s.azure_openai_endpoint} (HTTP 404)",
                          "check AZURE_OPENAI_DEPLOYMENT, AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_VERSION")
        return
    except openai.APIStatusError as exc:
        yield CheckResult("Azure OpenAI", NOT_READY, f"{s.azure_openai_endpoint} answered HTTP {exc.status_code}",
                          "check AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_VERSION")
        return
    except Exception as exc:  # noqa: BLE001 - e.g. no Entra credential: the check's answer
        yield CheckResult("Azure OpenAI", NOT_READY, f"{type(exc).__name__}: {first_line(exc)}",
                          "check the Azure OpenAI settings and credentials")
        return
    yield CheckResult("Azure OpenAI", READY, f"{s.azure_openai_endpoint} ({how}): {answered}")
