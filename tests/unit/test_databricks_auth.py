"""Access tokens for Databricks: PAT and Entra ID, cached, refreshed, and never shown."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.core.exceptions import ClientAuthenticationError
from pydantic import SecretStr

from shared.databricks.auth import DATABRICKS_ENTRA_SCOPE, EntraToken, PatToken, make_azure_credential
from shared.databricks.errors import TokenUnavailable
from shared.exceptions import ConfigError, TransientError

PAT = "dapi0123456789abcdef0123456789abcdef"


@dataclass
class AccessToken:
    token: str
    expires_on: int


class FakeCredential:
    """azure-core's TokenCredential shape: get_token(scope) -> AccessToken(token, expires_on)."""

    def __init__(self, clock: list[float], lifetime: int = 3600) -> None:
        self.clock, self.lifetime = clock, lifetime
        self.scopes: list[str] = []
        self.fail = False

    def get_token(self, *scopes: str) -> AccessToken:
        self.scopes.append(scopes[0])
        if self.fail:
            raise ClientAuthenticationError("ManagedIdentityCredential authentication unavailable")
        return AccessToken(f"eyJ.token-{len(self.scopes)}", int(self.clock[0]) + self.lifetime)


@pytest.fixture
def clock() -> list[float]:
    return [1_700_000_000.0]


def entra(credential: FakeCredential, clock: list[float]) -> EntraToken:
    return EntraToken(credential, refresh_margin=300, clock=lambda: clock[0])


def test_a_pat_is_sent_as_a_bearer_token():
    assert PatToken(PAT).authorization() == f"Bearer {PAT}"


def test_a_pat_given_as_a_secret_str_is_unwrapped():
    assert PatToken(SecretStr(PAT)).authorization() == f"Bearer {PAT}"


def test_a_pat_never_appears_in_repr_or_str():
    token = PatToken(PAT)

    assert PAT not in repr(token)
    assert PAT not in str(token)
    assert PAT not in f"{token!r} {token}"


def test_an_empty_pat_is_a_configuration_error():
    with pytest.raises(ConfigError):
        PatToken("  ")


def test_entra_asks_for_the_azure_databricks_scope(clock):
    credential = FakeCredential(clock)

    entra(credential, clock).authorization()

    assert credential.scopes == ["2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default"] == [DATABRICKS_ENTRA_SCOPE]


def test_entra_reuses_the_cached_token_while_it_is_fresh(clock):
    credential = FakeCredential(clock)
    provider = entra(credential, clock)

    first = provider.authorization()
    clock[0] += 3000  # 10 minutes before expiry, outside the 5-minute margin
    second = provider.authorization()

    assert first == second == "Bearer eyJ.token-1"
    assert len(credential.scopes) == 1


def test_entra_refreshes_the_token_within_the_margin_before_expiry(clock):
    credential = FakeCredential(clock)
    provider = entra(credential, clock)

    provider.authorization()
    clock[0] += 3400  # 200 s before expiry
    header = provider.authorization()

    assert header == "Bearer eyJ.token-2"


def test_entra_keeps_a_still_valid_token_when_an_early_refresh_fails(clock):
    credential = FakeCredential(clock)
    provider = entra(credential, clock)
    provider.authorization()
    credential.fail = True
    clock[0] += 3400

    assert provider.authorization() == "Bearer eyJ.token-1"


def test_entra_failing_without_a_valid_token_is_transient_and_keeps_the_cause(clock):
    credential = FakeCredential(clock)
    credential.fail = True

    with pytest.raises(TokenUnavailable) as raised:
        entra(credential, clock).authorization()

    assert isinstance(raised.value, TransientError)
    assert isinstance(raised.value.__cause__, ClientAuthenticationError)


def test_entra_fetches_again_after_invalidate(clock):
    credential = FakeCredential(clock)
    provider = entra(credential, clock)
    provider.authorization()

    provider.invalidate()

    assert provider.authorization() == "Bearer eyJ.token-2"


def test_the_entra_token_never_appears_in_repr(clock):
    provider = entra(FakeCredential(clock), clock)
    provider.authorization()

    assert "eyJ" not in repr(provider)


def test_a_client_id_selects_the_user_assigned_managed_identity(monkeypatch):
    monkeypatch.delenv("AZURE_CLIENT_ID", raising=False)

    credential = make_azure_credential("11111111-2222-3333-4444-555555555555")

    assert type(credential).__name__ == "ManagedIdentityCredential"


def test_without_a_client_id_the_default_credential_chain_is_used(monkeypatch):
    monkeypatch.delenv("AZURE_CLIENT_ID", raising=False)

    assert type(make_azure_credential(None)).__name__ == "DefaultAzureCredential"


def test_azure_client_id_from_the_environment_selects_the_managed_identity(monkeypatch):
    monkeypatch.setenv("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555")

    assert type(make_azure_credential(None)).__name__ == "ManagedIdentityCredential"


def test_importing_the_client_does_not_import_azure_identity():
    code = "import sys, shared.databricks.client; print('azure.identity' in sys.modules)"

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)

    assert out.stdout.strip() == "False"
