"""The credential catalogue (tests/secret_catalogue.py) through redact(): each shape masked, ordinary error text
kept, and no input slow to mask. The same catalogue goes through the whole app in
tests/integration/test_secret_sinks.py."""

from __future__ import annotations

import json
import time

import pytest

from shared.redaction import MASK, redact, redact_data
from shared.secret_shapes import is_secret_name
from tests.secret_catalogue import SHAPES


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_every_shape_is_masked(shape):
    masked = redact(shape.text)
    assert MASK in masked
    for secret in shape.secrets:
        assert secret not in masked, masked


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_every_shape_is_masked_inside_data(shape):
    masked = str(redact_data({"error": shape.text, "tasks": [{"error_trace": f"Traceback:\n{shape.text}"}]}))
    assert not any(secret in masked for secret in shape.secrets)


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_every_shape_is_masked_amid_a_trace(shape):
    trace = f"Py4JJavaError: An error occurred while calling o123.load.\n: {shape.text}\n\tat x.Y.z(Y.java:10)"
    masked = redact(trace)
    assert not any(secret in masked for secret in shape.secrets)
    assert "Py4JJavaError" in masked and "at x.Y.z(Y.java:10)" in masked  # the rest of the trace stays readable


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_every_shape_is_masked_when_quoted_in_json(shape):
    # A queue message or log line carries the text JSON-escaped: quotes as \", line breaks as \n.
    masked = redact(json.dumps({"job_name": shape.text}))
    assert not any(s in masked or json.dumps(s)[1:-1] in masked for s in shape.secrets), masked


@pytest.mark.parametrize("text", [
    "java.lang.OutOfMemoryError: Java heap space",
    "[TABLE_OR_VIEW_NOT_FOUND] The table or view `main`.`sales`.`orders` cannot be found. SQLSTATE: 42P01",
    "spark.sql.shuffle.partitions 200",
    "fs.azure.account.auth.type.lake.dfs.core.windows.net OAuth",
    'ERROR: duplicate key value violates unique constraint "orders_pkey"',
    'FATAL: password authentication failed for user "etl_user"',
    "secret 'databricks-pat' in Key Vault https://kv.vault.azure.net: not found",
    "AADSTS700016: Application with identifier 'a1b2c3d4-0000-1111-2222-333344445555' was not found",
    "max_tokens=500 token_type=bearer idempotency_token=agent-0f3a9c2e1b",
    "KeyError: 'customer_id'",
    "at com.databricks.backend.common.rpc.TokenProvider.getToken(TokenProvider.scala:42)",
    "run 1234567 of job 42 failed after 3 attempts; cluster 0123-456789-abcdefgh terminated",
])
def test_ordinary_error_text_stays_readable(text):
    assert redact(text) == text


@pytest.mark.parametrize(("name", "secret"), [
    ("password", True), ("AZURE_OPENAI_API_KEY", True), ("aws_secret_access_key", True), ("clientSecret", True),
    ("fs.azure.account.oauth2.client.secret.lake.dfs.core.windows.net", True),
    ("fs.azure.account.key.lake.dfs.core.windows.net", True), ("PWD", True),
    ("pat_secret_name", False), ("idempotency_token", False), ("max_tokens", False), ("primary_key", False),
    ("fs.azure.account.auth.type", False), ("spark.sql.shuffle.partitions", False),
])
def test_secret_names(name, secret):
    assert is_secret_name(name) is secret


@pytest.mark.parametrize("hostile", [
    "x." * 50_000 + " y",  # took 54 s with the old URL pattern
    "-----BEGIN PRIVATE KEY-----" * 5_000,
    "https://" + "a:" * 50_000,
    "a://" * 30_000,
    "'password': '" * 10_000,
    "key " * 50_000,
    ("a" * 30 + "8Q~") * 3_000,
])
def test_no_input_is_slow_to_mask(hostile):
    start = time.perf_counter()
    redact(hostile)
    assert time.perf_counter() - start < 5.0
