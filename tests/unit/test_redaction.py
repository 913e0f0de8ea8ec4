"""No secret reaches a log line, a decision record or an email: each kind pushed through the real logging path."""

from __future__ import annotations

import base64
import io
import json
import logging
import secrets as random_secrets
from urllib.parse import quote

import pytest

from shared.decision import DecisionRecord
from shared.redaction import (
    MASK,
    RedactingFilter,
    install_redaction,
    redact,
    redact_data,
    register_secret,
    uninstall_redaction,
)

DAPI = "dapi" + "0123456789abcdef" * 2
JWT = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJodHRwczovL3ZhdWx0LmF6dXJlLm5ldCIsIm9pZCI6IjEyMyJ9."
    "c2lnbmF0dXJlLWJ5dGVzLWhlcmUtMTIzNDU2Nzg5MA"
)
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
BASIC_PASSWORD = "s3cret-webhook-pw"
BASIC = base64.b64encode(f"databricks:{BASIC_PASSWORD}".encode()).decode()

# (kind, text as it would appear, the secret part that must not appear)
SECRETS = [
    ("databricks PAT", f"token {DAPI} rejected", DAPI),
    ("databricks PAT with suffix", f"used {DAPI}-2", DAPI),
    ("bearer JWT", f"Authorization: Bearer {JWT}", JWT),
    ("bearer opaque", "Authorization: Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0", "9f8e7d6c5b4a39281706f5e4d3c2b1a0"),
    ("basic auth header", f"Authorization: Basic {BASIC}", BASIC),
    ("api-key header", "api-key: 0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"),
    ("api_key=", "calling with api_key=Zx81kLmN0pQrStUv", "Zx81kLmN0pQrStUv"),
    ("api key in JSON", '{"apiKey": "Zx81kLmN0pQrStUv2"}', "Zx81kLmN0pQrStUv2"),
    (
        "storage connection string",
        f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net",
        ACCOUNT_KEY[:40],
    ),
    (
        "SAS in a connection string",
        "BlobEndpoint=https://a.blob.core.windows.net/;SharedAccessSignature=sv=2022-11-02&ss=b&sig=AbC123xyz%3D",
        "AbC123xyz",
    ),
    ("SAS sig in a URL", "GET https://a.blob.core.windows.net/c/b?sv=2022&se=2030&sig=Qw3rTy9%2BuIoP%3D", "Qw3rTy9"),
    (
        "ACS connection string",
        "endpoint=https://acs.communication.azure.com/;accesskey=QUJDREVGR0hJSktMTU5PUA==",
        "QUJDREVGR0hJSktMTU5PUA",
    ),
    ("password=", "smtp login user=agent password=Hunter2-Hunter2", "Hunter2-Hunter2"),
    ("password in JSON", '{"user": "agent", "password": "Tr0ub4dor&3"}', "Tr0ub4dor&3"),
    ("password in a dict repr", "{'password': 'correct-horse-battery'}", "correct-horse-battery"),
    ("password in a URL", "connecting to smtp://agent:P4ssw0rd-x@mail.example.com:587", "P4ssw0rd-x"),
    (
        "function key in the webhook URL",
        "POST https://app.azurewebsites.net/api/databricks/webhook?code=abcDEF123-_xyz==",
        "abcDEF123",
    ),
    ("client_secret=", "grant_type=client_credentials&client_secret=Xy7~abcdEFGH.ijkl", "Xy7~abcdEFGH.ijkl"),
    ("OpenAI key", "key sk-proj-AbCdEfGhIjKlMnOpQrStUvWx", "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx"),
    (
        "private key",
        "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n-----END PRIVATE KEY-----",
        "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49",
    ),
    ("bare storage account key", f"key was {ACCOUNT_KEY}", ACCOUNT_KEY[:40]),
]
IDS = [kind for kind, _, _ in SECRETS]


@pytest.fixture
def captured():
    """A logger with its own StringIO handler (as a host's would be), redaction installed, restored afterwards."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s | %(detail)s"))
    logger = logging.getLogger(f"test.redaction.{random_secrets.token_hex(4)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    install_redaction(logger)
    yield logger, stream
    uninstall_redaction(logger)
    logger.removeHandler(handler)


@pytest.mark.parametrize(("kind", "text", "secret"), SECRETS, ids=IDS)
def test_a_secret_in_the_message_is_masked(captured, kind, text, secret):
    logger, stream = captured
    logger.warning(f"seen: {text}", extra={"detail": "-"})
    output = stream.getvalue()
    assert secret not in output
    assert MASK in output


@pytest.mark.parametrize(("kind", "text", "secret"), SECRETS, ids=IDS)
def test_a_secret_in_the_arguments_is_masked(captured, kind, text, secret):
    logger, stream = captured
    logger.info("seen: %s (%d)", text, 1, extra={"detail": "-"})
    assert secret not in stream.getvalue()


@pytest.mark.parametrize(("kind", "text", "secret"), SECRETS, ids=IDS)
def test_a_secret_in_an_exception_is_masked(captured, kind, text, secret):
    logger, stream = captured
    try:
        raise RuntimeError(f"backend said: {text}")
    except RuntimeError:
        logger.exception("call failed", extra={"detail": "-"})
    output = stream.getvalue()
    assert "Traceback" in output and "RuntimeError" in output
    assert secret not in output


@pytest.mark.parametrize(("kind", "text", "secret"), SECRETS, ids=IDS)
def test_a_secret_in_an_extra_field_is_masked(captured, kind, text, secret):
    logger, stream = captured
    logger.info("request", extra={"detail": text})
    assert secret not in stream.getvalue()


def test_a_registered_secret_is_masked_wherever_it_appears(captured):
    logger, stream = captured
    value = "p@ss/" + random_secrets.token_hex(8)  # looks like nothing in particular
    register_secret(value)
    logger.info("value %s and url-encoded %s", value, quote(value, safe=""), extra={"detail": {"nested": [value]}})
    output = stream.getvalue()
    assert value not in output and quote(value, safe="") not in output


def test_a_secret_in_a_dict_argument_is_masked(captured):
    logger, stream = captured
    logger.info("headers %s", {"Authorization": f"Bearer {JWT}", "x-request-id": "abc"}, extra={"detail": "-"})
    assert JWT not in stream.getvalue()
    assert "x-request-id" in stream.getvalue()


def test_records_of_other_loggers_are_masked_by_the_root_handlers():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        install_redaction()
        logging.getLogger("shared.somewhere.deep").error("token %s", DAPI)
    finally:
        uninstall_redaction()
        root.removeHandler(handler)
    assert DAPI not in stream.getvalue()
    assert "token ***" in stream.getvalue()


def test_installing_twice_adds_one_filter(captured):
    logger, _ = captured
    install_redaction(logger)
    install_redaction(logger)
    assert sum(isinstance(f, RedactingFilter) for f in logger.filters) == 1
    assert sum(isinstance(f, RedactingFilter) for f in logger.handlers[0].filters) == 1


def test_the_exception_is_kept_as_redacted_text_not_as_exc_info(captured):
    logger, _ = captured
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    keep = Keep()
    logger.addHandler(keep)
    install_redaction(logger)
    try:
        raise ValueError(f"bad token {DAPI}")
    except ValueError:
        logger.exception("failed")
    logger.removeHandler(keep)
    assert records[0].exc_info is None
    assert "ValueError: bad token ***" in records[0].exc_text


@pytest.mark.parametrize(
    "prose",
    [
        "Bearer token authentication is not permitted for non-TLS protected (non-https) URLs",
        "Basic auth is on for the webhook",
        "WEBHOOK_PASSWORD: not set, but WEBHOOK_USERNAME is: set both or neither",
        "secret 'databricks-pat' in Key Vault https://kv.vault.azure.net: not found",
        "job 42 run 1234567 failed: [TABLE_OR_VIEW_NOT_FOUND] SQLSTATE: 42P01",
        "idempotency_token=agent-0f3a9c2e1b",
        "exit code=1 after 3 attempts",
        "only the function key (?code=) protects the webhook",
    ],
)
def test_prose_and_ids_stay_readable(prose):
    assert redact(prose) == prose


def test_redaction_is_idempotent():
    text = " ".join(t for _, t, _ in SECRETS)
    once = redact(text)
    assert redact(once) == once


def test_a_decision_record_is_redacted_before_it_is_stored_or_mailed():
    record = DecisionRecord(
        key="default:123:0",
        workspace_id="default",
        run_id=123,
        chain_id="default:123",
        error=f"HTTP 401 with Authorization: Bearer {JWT}",
    )
    data = record.model_dump(mode="json")
    data["evidence"] = {"error_trace": f"requests to https://x?code=abc123SECRETkey failed; password={BASIC_PASSWORD}"}
    data["resize"] = {"spark_conf": {
        "fs.azure.account.key.acct.dfs.core.windows.net": ACCOUNT_KEY,
        "spark.hadoop.fs.azure.account.oauth2.client.secret": "{{secrets/scope/sp-secret}}",
        "spark.sql.shuffle.partitions": "400",
    }}
    cleaned = json.dumps(redact_data(data))
    for secret in (JWT, "abc123SECRETkey", BASIC_PASSWORD, ACCOUNT_KEY[:40]):
        assert secret not in cleaned
    assert "{{secrets/scope/sp-secret}}" in cleaned  # a secret reference is not a secret
    assert '"spark.sql.shuffle.partitions": "400"' in cleaned
    assert '"key": "default:123:0"' in cleaned  # the idempotency key is not a secret


def test_an_email_body_is_redacted():
    body = (
        "<p>The run failed:</p><pre>java.io.IOException: Server returned HTTP response code: 403 for URL: "
        f"https://storage.example/x?sv=2022&sig=Zz9YyXx%3D with header Authorization: Bearer {JWT}</pre>"
    )
    cleaned = redact(body)
    assert JWT not in cleaned and "Zz9YyXx" not in cleaned
    assert "<p>The run failed:</p>" in cleaned
