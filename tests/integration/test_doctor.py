"""`python -m shared doctor` against a half-filled configuration and against the demo services (Azurite, the
Databricks simulator, the Key Vault fake, an SMTP server): the table, the exit code, and no secret printed."""

from __future__ import annotations

import io
import json

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from localdev.ports import free_port
from shared.__main__ import main
from shared.doctor import NOT_READY, READY, SKIPPED, CheckResult, doctor
from shared.doctor.checks import check_openai
from shared.secrets import KeyVaultSecretProvider
from tests.fixtures.databricks import SIM_TOKEN
from tests.fixtures.keyvault import FakeCredential

WEBHOOK_PASSWORD = "webhook-pw-5d1c0e7b9a"
SMTP_PASSWORD = "smtp-pw-0b8e2f6a4c"
ACCOUNT_KEY_PART = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1"  # Azurite's well-known key: still never printed


def closed_storage() -> str:
    port = free_port()
    return (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={ACCOUNT_KEY_PART}Zz==;"
        f"QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
        f"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )


def run_doctor(env, **kwargs) -> tuple[int, str]:
    out = io.StringIO()
    code = doctor(env, out=out, timeout=3, **kwargs)
    return code, out.getvalue()


def rows(output: str) -> dict[str, str]:
    """CHECK -> STATUS, from the printed table."""
    found = {}
    for line in output.splitlines()[1:]:
        for status in (f"{NOT_READY} (optional)", NOT_READY, READY, SKIPPED):
            marker = f"  {status} "
            if marker in line and not line.startswith(" "):
                found[line.split(marker)[0].strip()] = status
                break
    return found


class _Sink:
    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's naming
        return "250 OK"


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"agent@example.com" and auth_data.password == SMTP_PASSWORD.encode()
    return AuthResult(success=ok, handled=False if not ok else True)


@pytest.fixture
def smtp_server():
    port = free_port()
    controller = Controller(_Sink(), hostname="127.0.0.1", port=port, authenticator=_authenticator,
                            auth_require_tls=False)
    controller.start()
    yield port
    controller.stop()


@pytest.fixture
def demo_env(storage_connection_string, sim, keyvault_fake, smtp_server):
    """Everything the agent needs, on the demo services; the PAT and the SMTP password live in the vault."""
    keyvault_fake.set_secret("databricks-pat", SIM_TOKEN)
    keyvault_fake.set_secret("email-password", SMTP_PASSWORD)
    return {
        "AzureWebJobsStorage": storage_connection_string,
        "DATABRICKS_WORKSPACE_URL": sim.url,
        "DATABRICKS_AUTH": "pat",
        "DATABRICKS_WORKSPACE_ID": "1234567890123456",
        "KEY_VAULT_URL": keyvault_fake.url,
        "WEBHOOK_USERNAME": "databricks",
        "WEBHOOK_PASSWORD": WEBHOOK_PASSWORD,
        "EMAIL_ENABLED": "true",
        "EMAIL_TRANSPORT": "smtp",
        "EMAIL_SENDER": "agent@example.com",
        "EMAIL_SMTP_HOST": "127.0.0.1",
        "EMAIL_SMTP_PORT": str(smtp_server),
        "EMAIL_SMTP_SECURITY": "none",
        "EMAIL_PASSWORD_SECRET_NAME": "email-password",
    }


@pytest.fixture
def vault(keyvault_fake, keyvault_client_kwargs):
    provider = KeyVaultSecretProvider(keyvault_fake.url, credential=FakeCredential(), **keyvault_client_kwargs)
    yield provider
    provider.close()


def assert_no_secret(output: str) -> None:
    for secret in (SIM_TOKEN, WEBHOOK_PASSWORD, SMTP_PASSWORD, ACCOUNT_KEY_PART):
        assert secret not in output


# --- a half-filled configuration --------------------------------------------------------------------------

def test_a_half_filled_configuration_prints_the_table_and_exits_non_zero():
    code, output = run_doctor({"MAX_RETRIES": "many", "AzureWebJobsStorage": closed_storage()})
    assert code == 1
    assert output.splitlines()[0].split() == ["CHECK", "STATUS", "DETAIL"]
    table = rows(output)
    assert table["setting MAX_RETRIES"] == NOT_READY
    assert table["setting DATABRICKS_HOST"] == NOT_READY
    assert table["storage queue job-failures"] == NOT_READY
    assert table["Databricks"] == NOT_READY
    assert table["Key Vault"] == SKIPPED
    assert table["email"] == SKIPPED
    assert "fix: check AzureWebJobsStorage" in output
    assert "required check(s) NOT READY" in output
    assert ACCOUNT_KEY_PART not in output


def test_an_empty_configuration_still_runs_every_check():
    code, output = run_doctor({})
    assert code == 1
    table = rows(output)
    for check in ("setting DATABRICKS_HOST", "setting AzureWebJobsStorage", "webhook auth", "storage",
                  "Key Vault", "Databricks", "Azure OpenAI", "email"):
        assert check in table, output


def test_an_unresolved_key_vault_reference_is_reported_as_such():
    reference = "@Microsoft.KeyVault(VaultName=kv;SecretName=webhook-password)"
    env = {"WEBHOOK_USERNAME": "databricks", "WEBHOOK_PASSWORD": reference}
    code, output = run_doctor(env)
    assert code == 1
    assert "setting WEBHOOK_PASSWORD" in output
    assert "unresolved Key Vault reference @Microsoft.KeyVault(VaultName=kv;SecretName=webhook-password)" in output


def test_a_secret_in_a_half_filled_configuration_is_never_printed():
    token = "dapi" + "fe" * 16
    env = {"DATABRICKS_WORKSPACE_URL": f"https://127.0.0.1:{free_port()}", "DATABRICKS_PAT_TOKEN": token,
           "WEBHOOK_USERNAME": "databricks", "WEBHOOK_PASSWORD": WEBHOOK_PASSWORD,
           "AzureWebJobsStorage": closed_storage()}
    code, output = run_doctor(env)
    assert code == 1
    assert token not in output and WEBHOOK_PASSWORD not in output
    assert f"PAT …{token[-4:]}" in output  # the last four characters at most


def test_a_check_that_crashes_becomes_a_row():
    def check_broken(ctx):
        raise RuntimeError("boom")
        yield  # pragma: no cover

    code, output = run_doctor({}, checks=[check_broken])
    assert code == 1 and "broken" in output and "the check itself failed: RuntimeError: boom" in output


def test_an_optional_row_that_is_not_ready_does_not_fail_the_run():
    def check_optional(ctx):
        yield CheckResult("nice to have", NOT_READY, "missing", "add it", required=False)

    code, output = run_doctor({}, checks=[check_optional])
    assert code == 0 and "NOT READY (optional)" in output


# --- the demo services -------------------------------------------------------------------------------------

@pytest.mark.slow
def test_the_demo_environment_is_ready(demo_env, vault):
    code, output = run_doctor(demo_env, secrets=vault)
    table = rows(output)
    assert code == 0, output
    for check in ("settings", "webhook auth", "storage queue job-failures", "storage table agentdecisions",
                  "storage table agentstate", "storage table agentoutbox", "Key Vault secret databricks-pat",
                  "Key Vault secret email-password", "Databricks 1234567890123456", "email (smtp)"):
        assert table[check] == READY, output
    assert table["Azure OpenAI"] == SKIPPED
    assert "everything required is READY" in output
    assert "login as agent@example.com" in output
    assert_no_secret(output)


@pytest.mark.slow
def test_a_denied_vault_secret_makes_the_workspace_not_ready(demo_env, vault, keyvault_fake):
    keyvault_fake.deny("databricks-pat")
    code, output = run_doctor(demo_env, secrets=vault)
    table = rows(output)
    assert code == 1
    assert table["Key Vault secret databricks-pat"] == NOT_READY
    assert table["Databricks 1234567890123456"] == NOT_READY
    assert "Key Vault Secrets User" in output and keyvault_fake.url in output
    assert_no_secret(output)


@pytest.mark.slow
def test_a_rejected_pat_is_reported_without_printing_it(demo_env, vault, keyvault_fake):
    wrong = "dapi" + "0badc0de" * 4
    keyvault_fake.set_secret("databricks-pat", wrong)
    code, output = run_doctor(demo_env, secrets=vault)
    assert code == 1
    assert "refused the credentials (PAT …" in output
    assert wrong not in output


@pytest.mark.slow
def test_a_wrong_smtp_password_is_reported(demo_env, vault, keyvault_fake):
    keyvault_fake.set_secret("email-password", "not-the-password-123")
    code, output = run_doctor(demo_env, secrets=vault)
    assert code == 1
    assert rows(output)["email (smtp)"] == NOT_READY and "login refused" in output
    assert "not-the-password-123" not in output


@pytest.mark.slow
def test_the_command_line_reads_a_local_settings_file(tmp_path, capsys, storage_connection_string, sim):
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": {
        "AzureWebJobsStorage": storage_connection_string,
        "DATABRICKS_WORKSPACE_URL": sim.url,
        "DATABRICKS_PAT_TOKEN": SIM_TOKEN,
        "MAX_RETRIES": "11",
    }}))
    code = main(["doctor", "--settings", str(settings), "--ignore-environment", "--timeout", "3"])
    output = capsys.readouterr().out
    assert code == 1
    assert output.startswith(f"settings from: {settings}")
    table = rows(output.split("\n\n", 1)[1])
    assert table["setting MAX_RETRIES"] == NOT_READY
    assert table["storage queue job-failures"] == READY
    assert table["storage queue job-failures-llm"] == READY, "the LLM queue is checked too"
    assert table[f"Databricks {sim.url}"] == READY
    assert SIM_TOKEN not in output


def test_azure_openai_is_ready_when_its_deployment_answers():
    from localdev.fakes.openai_server import FAKE_API_KEY, FakeAzureOpenAI

    with FakeAzureOpenAI() as fake:
        env = {"AZURE_OPENAI_ENDPOINT": fake.endpoint, "AZURE_OPENAI_DEPLOYMENT": "gpt-4o-mini",
               "AZURE_OPENAI_API_KEY": FAKE_API_KEY}
        _, output = run_doctor(env, checks=[check_openai], llm_call=True)
        _, wrong = run_doctor({**env, "AZURE_OPENAI_DEPLOYMENT": "gpt-5-nowhere"}, checks=[check_openai], llm_call=True)
        _, refused = run_doctor({**env, "AZURE_OPENAI_API_KEY": "not-the-key-000"}, checks=[check_openai],
                                llm_call=True)
    assert rows(output)["Azure OpenAI"] == READY and "deployment 'gpt-4o-mini' answered" in output
    assert rows(wrong)["Azure OpenAI"] == NOT_READY and "deployment 'gpt-5-nowhere' not found" in wrong
    assert rows(refused)["Azure OpenAI"] == NOT_READY and "credentials refused" in refused
    for text in (output, wrong):
        assert FAKE_API_KEY not in text


def test_the_command_line_prints_json(tmp_path, capsys):
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": {"MAX_RETRIES": "x"}}))
    code = main(["doctor", "--settings", str(settings), "--ignore-environment", "--json", "--timeout", "1"])
    results = json.loads(capsys.readouterr().out)
    assert code == 1
    assert {"name": "setting MAX_RETRIES", "status": NOT_READY}.items() <= results[0].items()


def test_an_encrypted_settings_file_is_refused(tmp_path, capsys):
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"IsEncrypted": True, "Values": {}}))
    assert main(["doctor", "--settings", str(settings)]) == 2
    assert "IsEncrypted" in capsys.readouterr().err
