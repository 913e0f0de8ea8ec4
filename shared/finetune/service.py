"""Submit a prepared dataset to Azure OpenAI fine-tuning and follow the job, through the `openai` client.

The training file must be processed by the service before a job can use it, so submit waits for that
(bounded). The endpoint, API version and key (or Entra ID) are the agent's own AZURE_OPENAI_* settings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class FineTuneError(Exception):
    """The service refused or failed a step; the message says which and why."""


@dataclass(frozen=True)
class Submitted:
    job_id: str
    training_file: str
    validation_file: str | None
    status: str


def upload(client: Any, path: Path, *, wait_seconds: float = 300, sleep: Callable[[float], None] = time.sleep) -> str:
    """Upload one JSONL file for fine-tuning and wait until the service has processed it; its file id."""
    with path.open("rb") as handle:
        uploaded = client.files.create(file=(path.name, handle), purpose="fine-tune")
    waited = 0.0
    status = getattr(uploaded, "status", "processed")
    while status not in ("processed", "error", "deleted"):
        if waited >= wait_seconds:
            raise FineTuneError(f"{path.name}: still '{status}' after {wait_seconds:.0f} s; run submit again later")
        sleep(min(2.0 + waited / 10, 15.0))
        waited += min(2.0 + waited / 10, 15.0)
        status = client.files.retrieve(uploaded.id).status
    if status != "processed":
        raise FineTuneError(f"{path.name}: the service rejected the file ({status})")
    return uploaded.id


def submit(client: Any, train: Path, validation: Path | None, *, model: str, suffix: str | None = None,
           seed: int | None = 42, sleep: Callable[[float], None] = time.sleep) -> Submitted:
    """Upload the files and create the fine-tuning job."""
    from openai import OpenAIError

    try:
        training_id = upload(client, train, sleep=sleep)
        validation_id = upload(client, validation, sleep=sleep) if validation is not None else None
        options: dict[str, Any] = {"model": model, "training_file": training_id, "seed": seed}
        if validation_id:
            options["validation_file"] = validation_id
        if suffix:
            options["suffix"] = suffix
        job = client.fine_tuning.jobs.create(**options)
    except OpenAIError as exc:
        raise FineTuneError(f"Azure OpenAI refused: {exc}") from exc
    return Submitted(job.id, training_id, validation_id, job.status)


def status(client: Any, job_id: str, *, events: int = 10) -> dict[str, Any]:
    """The job's state, its fine-tuned model once it has one, and its latest events."""
    from openai import OpenAIError

    try:
        job = client.fine_tuning.jobs.retrieve(job_id)
        listed = client.fine_tuning.jobs.list_events(fine_tuning_job_id=job_id, limit=events)
    except OpenAIError as exc:
        raise FineTuneError(f"Azure OpenAI refused: {exc}") from exc
    return {
        "id": job.id, "status": job.status, "model": job.model, "fine_tuned_model": job.fine_tuned_model,
        "trained_tokens": job.trained_tokens, "error": (job.error.message if job.error else None),
        "events": [{"at": e.created_at, "level": e.level, "message": e.message} for e in listed.data],
    }


def openai_client(settings: Any) -> Any:
    """An AzureOpenAI client from the agent's settings: the API key (setting or Key Vault), else Entra ID."""
    from openai import AzureOpenAI

    if not settings.azure_openai_endpoint:
        raise FineTuneError("AZURE_OPENAI_ENDPOINT is not set")
    common = {"azure_endpoint": settings.azure_openai_endpoint, "api_version": settings.azure_openai_api_version,
              "max_retries": 2, "timeout": 120}
    key = _api_key(settings)
    if key:
        return AzureOpenAI(api_key=key, **common)
    from azure.identity import DefaultAzureCredential, get_bearer_token_provider

    provider = get_bearer_token_provider(DefaultAzureCredential(), "https://cognitiveservices.azure.com/.default")
    return AzureOpenAI(azure_ad_token_provider=provider, **common)


def _api_key(settings: Any) -> str | None:
    from shared.secrets import build_secret_provider, resolve_secret

    return resolve_secret(settings, build_secret_provider(settings), "azure_openai_api_key")
