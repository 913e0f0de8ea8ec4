"""redact() skips a shape's scan when a literal every match of it contains is absent, and remembers texts it has
redacted: neither may change a single result. Shown on the secret catalogue, the labeled failure texts and
generated texts, against redact() with every shape run; and the literals are checked inside every match."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import redaction
from shared.secret_shapes import AUTH_VALUE, FOLDS_TO_ASCII, REQUIRES, SHAPES, Prechecks
from tests.secret_catalogue import SHAPES as CATALOGUE

ROOT = Path(__file__).resolve().parents[2]
PATTERNS = {shape.name: shape.pattern for shape in SHAPES} | {"authorization value": AUTH_VALUE}


def _corpus() -> list[str]:
    texts = [shape.text for shape in CATALOGUE]
    for path in sorted((ROOT / "tests" / "data").glob("*.jsonl")):
        texts += [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    variants = []
    for text in texts:
        variants += [text.upper(), text.lower(), text.replace("s", "ſ"), text.replace("k", "\u212a"),
                     text.replace("i", "ı"), text.replace("I", "İ"), "— " + text]
    return texts + variants


CORPUS = _corpus()


def _redact_every_shape(text: str) -> str:
    result = redaction._known.mask(text)
    for shape in SHAPES:
        result = shape.apply(result)
    return AUTH_VALUE.sub(redaction._mask_auth, result)


def test_every_shape_has_its_literals_and_no_literal_names_a_shape_that_is_not_there():
    assert set(REQUIRES) == set(PATTERNS)


def test_the_letters_ignorecase_folds_into_ascii_unlike_lower_are_all_known():
    letter = re.compile("[a-z]", re.I)
    found = {chr(cp) for cp in range(0x80, 0x110000)
             if letter.fullmatch(chr(cp)) and chr(cp).lower() not in string.ascii_lowercase}
    assert found == set(FOLDS_TO_ASCII)


def test_every_match_in_the_corpus_contains_its_shapes_literals():
    checked = 0
    for text in CORPUS:
        for name, pattern in PATTERNS.items():
            for match in pattern.finditer(text):
                whole = match.group(0)
                assert Prechecks(whole).allows(name), (name, whole[:200])
                assert Prechecks(text).allows(name), (name, text[:200])
                checked += 1
    assert checked > 300  # the corpus exercises the shapes


def test_redact_with_prechecks_and_memory_gives_what_every_shape_run_gives():
    redaction._memo.clear()
    for text in CORPUS:
        assert redaction.redact(text) == _redact_every_shape(text), text[:200]
        assert redaction.redact(text) == _redact_every_shape(text)  # remembered now


_PIECES = st.sampled_from([
    "password", "PASSWORD", "passwd", "secret", "Secret", "token", "key", "api-key", "api key", "credential",
    "signature", "AccountKey", "SharedAccessSignature", "pwd", "Bearer", "basic", "sharedkey", "HMAC-SHA256",
    "dapi", "DOSE", "sk-", "ghp_", "github_pat_", "xoxb-", "AIza", "SG.", "https://", "hooks.slack.com/services/",
    "eyJ", "Q~", "://", "@", "/", "jdbc:oracle:thin:", "sqlplus ", "CONNECT ", "?", "&", "=", "==", ":", '"', "'",
    "`", "\\\"", "fs.azure.account.key.acct", "spark.", "hadoop.", "x-functions-key", "-----BEGIN PRIVATE KEY-----",
    "-----END PRIVATE KEY-----", "\n", " ", ";", "ſ", "ı", "İ", "K", "—", "***",
])
_FILLER = st.text(alphabet=string.ascii_letters + string.digits + "+/_-.~", min_size=0, max_size=40)


@settings(max_examples=600, deadline=None)
@given(st.lists(st.one_of(_PIECES, _FILLER), min_size=1, max_size=14))
def test_generated_texts_are_redacted_exactly_as_without_the_prechecks(parts):
    text = "".join(parts)
    assert redaction.redact(text) == _redact_every_shape(text)


def test_a_secret_registered_after_a_text_was_redacted_is_masked_in_it_from_then_on():
    text = "the job failed while reading with s3cr3t-value-registered-later in its arguments"
    assert "s3cr3t-value-registered-later" in redaction.redact(text)
    redaction.register_secret("s3cr3t-value-registered-later")
    assert "s3cr3t-value-registered-later" not in redaction.redact(text)


@pytest.fixture(autouse=True)
def _fresh_memory():
    redaction._memo.clear()
    yield
    redaction._memo.clear()


def test_a_record_passing_the_root_loggers_filter_and_a_handlers_is_redacted_once(monkeypatch):
    import io
    import logging

    calls = []
    real = redaction._redact_record
    monkeypatch.setattr(redaction, "_redact_record", lambda record: calls.append(record) or real(record))
    root, stream = logging.getLogger(), io.StringIO()
    handler = logging.StreamHandler(stream)
    root.addHandler(handler)
    redaction.install_redaction()
    try:
        root.error("token dapi%s leaked", "0123456789abcdef0123")
    finally:
        redaction.uninstall_redaction()
        root.removeHandler(handler)
    assert len(calls) == 1 and "dapi0123" not in stream.getvalue() and "***" in stream.getvalue()
