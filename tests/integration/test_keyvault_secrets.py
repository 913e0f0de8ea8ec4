"""The Key Vault provider through the real SecretClient, against the local HTTPS fake of Key Vault."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from localdev.fakes.keyvault import KeyVaultFake
from localdev.ports import free_port
from shared.exceptions import PermanentError, SecretError, TransientError
from shared.redaction import redact
from shared.secrets import (
    KeyVaultSecretProvider,
    SecretAccessDenied,
    SecretNotFound,
    SecretUnavailable,
)
from shared.settings import load_settings
from shared.workspaces import resolve_workspace, workspace_pat
from tests.fixtures.keyvault import FAKE_TOKEN, FakeCredential

ROOT = Path(__file__).resolve().parents[2]
PAT = "dapi" + "0a1b2c3d4e5f6789" * 2


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def provider_for(fake, kwargs, **extra) -> KeyVaultSecretProvider:
    return KeyVaultSecretProvider(fake.url, credential=FakeCredential(), **kwargs, **extra)


def test_a_secret_is_read_through_the_challenge_and_a_bearer_token(tls_files, keyvault_client_kwargs):
    # A vault of its own: the SDK caches a vault's challenge for the process, so a vault other tests
    # already used would be sent the token at once.
    with KeyVaultFake(tls_files.cert, tls_files.key, secrets={"databricks-pat": PAT}) as fake:
        credential = FakeCredential()
        provider = KeyVaultSecretProvider(fake.url, credential=credential, **keyvault_client_kwargs)
        assert provider.get("databricks-pat") == PAT
        provider.close()
    # The unauthenticated request is challenged, then repeated with the token for Key Vault's scope.
    assert [(r.status, r.authorization) for r in fake.requests] == [(401, None), (200, f"Bearer {FAKE_TOKEN}")]
    assert credential.requests[0][0] == ("https://vault.azure.net/.default",)


def test_a_secret_is_cached_for_its_ttl(keyvault_fake, keyvault_client_kwargs):
    keyvault_fake.set_secret("databricks-pat", PAT)
    clock = Clock()
    provider = provider_for(keyvault_fake, keyvault_client_kwargs, ttl_seconds=300, clock=clock)
    assert provider.get("databricks-pat") == PAT
    clock.now += 299
    assert provider.get("databricks-pat") == PAT
    assert keyvault_fake.reads("databricks-pat") == 1


def test_a_secret_is_read_again_after_its_ttl_and_sees_a_new_version(keyvault_fake, keyvault_client_kwargs):
    keyvault_fake.set_secret("databricks-pat", PAT)
    clock = Clock()
    provider = provider_for(keyvault_fake, keyvault_client_kwargs, ttl_seconds=300, clock=clock)
    provider.get("databricks-pat")
    keyvault_fake.set_secret("databricks-pat", PAT + "-rotated")
    clock.now += 301
    assert provider.get("databricks-pat") == PAT + "-rotated"
    assert keyvault_fake.reads("databricks-pat") == 2


def test_a_ttl_of_zero_reads_every_time(keyvault_fake, keyvault_client_kwargs):
    keyvault_fake.set_secret("databricks-pat", PAT)
    provider = provider_for(keyvault_fake, keyvault_client_kwargs, ttl_seconds=0)
    provider.get("databricks-pat")
    provider.get("databricks-pat")
    assert keyvault_fake.reads("databricks-pat") == 2


def test_invalidate_forgets_the_cached_value(keyvault_fake, keyvault_provider):
    keyvault_fake.set_secret("databricks-pat", PAT)
    keyvault_provider.get("databricks-pat")
    keyvault_provider.invalidate("databricks-pat")
    keyvault_provider.get("databricks-pat")
    assert keyvault_fake.reads("databricks-pat") == 2


def test_a_missing_secret_names_the_secret_and_the_vault(keyvault_fake, keyvault_provider):
    with pytest.raises(SecretNotFound) as caught:
        keyvault_provider.get("databricks-pat")
    message = str(caught.value)
    assert "'databricks-pat'" in message and keyvault_fake.url in message and "not found" in message
    assert (caught.value.secret_name, caught.value.source) == ("databricks-pat", f"Key Vault {keyvault_fake.url}")


def test_a_denied_secret_names_the_secret_the_vault_and_the_role(keyvault_fake, keyvault_provider):
    keyvault_fake.set_secret("databricks-pat", PAT)
    keyvault_fake.deny("databricks-pat")
    with pytest.raises(SecretAccessDenied) as caught:
        keyvault_provider.get("databricks-pat")
    message = str(caught.value)
    assert "'databricks-pat'" in message and keyvault_fake.url in message
    assert "HTTP 403 Forbidden" in message and "Key Vault Secrets User" in message
    assert PAT not in message


def test_a_disabled_secret_is_denied(keyvault_fake, keyvault_provider):
    keyvault_fake.set_secret("databricks-pat", PAT, enabled=False)
    with pytest.raises(SecretAccessDenied, match="check that the secret is enabled"):
        keyvault_provider.get("databricks-pat")


def test_a_rejected_token_is_denied(keyvault_fake, keyvault_provider):
    keyvault_fake.set_secret("databricks-pat", PAT)
    keyvault_fake.accepted_tokens = {"some-other-token"}
    with pytest.raises(SecretAccessDenied, match="HTTP 401"):
        keyvault_provider.get("databricks-pat")


def test_a_vault_that_is_down_names_the_secret_and_the_vault(keyvault_client_kwargs):
    url = f"https://127.0.0.1:{free_port()}"
    provider = KeyVaultSecretProvider(url, credential=FakeCredential(), **keyvault_client_kwargs)
    with pytest.raises(SecretUnavailable) as caught:
        provider.get("databricks-pat")
    assert "'databricks-pat'" in str(caught.value) and url in str(caught.value)
    assert "could not be reached" in str(caught.value)


def test_every_secret_error_is_retried_by_the_queue_not_recorded_as_permanent():
    for error in (SecretNotFound, SecretAccessDenied, SecretUnavailable):
        assert issubclass(error, SecretError) and issubclass(error, TransientError)
        assert not issubclass(error, PermanentError)


def test_get_optional_is_none_for_a_missing_secret_but_raises_when_denied(keyvault_fake, keyvault_provider):
    assert keyvault_provider.get_optional("azure-openai-api-key") is None
    keyvault_fake.deny("azure-openai-api-key")
    with pytest.raises(SecretAccessDenied):
        keyvault_provider.get_optional("azure-openai-api-key")


def test_a_secret_read_from_the_vault_is_masked_in_logs(keyvault_fake, keyvault_provider):
    value = "vault-only-value-7f3e9a"
    keyvault_fake.set_secret("email-password", value)
    keyvault_provider.get("email-password")
    assert value not in redact(f"smtp login failed for password {value}")


def test_a_workspace_pat_is_read_from_the_vault(keyvault_fake, keyvault_provider):
    keyvault_fake.set_secret("pat-prod", PAT)
    settings = load_settings({
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "KEY_VAULT_URL": keyvault_fake.url,
        "DATABRICKS_WORKSPACES": '[{"workspace_id": "7", "url": "https://adb-7.azuredatabricks.net", '
                                 '"auth": "pat", "pat_secret_name": "pat-prod"}]',
    })
    assert workspace_pat(resolve_workspace(settings, "7"), keyvault_provider) == PAT


def test_a_secret_error_in_the_pipeline_leaves_the_message_for_a_retry(keyvault_fake, keyvault_provider):
    try:
        from shared.pipeline import PipelineDeps
        from shared.worker import handle_message
    except ImportError as exc:  # the pipeline imports the classifier, which lands separately
        pytest.skip(f"the pipeline cannot be imported yet: {exc}")

    keyvault_fake.deny("pat-prod")
    settings = load_settings({
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "DATABRICKS_WORKSPACES": '[{"workspace_id": "7", "url": "https://adb-7.azuredatabricks.net", '
                                 '"auth": "pat", "pat_secret_name": "pat-prod"}]',
    })

    def jobs_api(workspace_id):
        workspace_pat(resolve_workspace(settings, workspace_id), keyvault_provider)
        raise AssertionError("the PAT cannot be read")

    deps = PipelineDeps(settings=settings, jobs_api=jobs_api, workspace_key=lambda w: w or "default", store=None,
                        state=None, notifier=None, classify=None, enqueue=None, analyzer=None)
    with pytest.raises(SecretAccessDenied):
        handle_message('{"workspace_id": "7", "run_id": 1}', message_id="m1", dequeue_count=1, max_dequeue_count=5,
                       deps=deps)


def test_importing_the_secret_modules_does_not_load_the_azure_sdks():
    code = (
        "import sys, shared.secrets, shared.workspaces, shared.redaction, shared.settings\n"
        "loaded = [m for m in ('azure.keyvault.secrets', 'azure.identity', 'openai') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
