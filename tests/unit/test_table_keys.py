"""Table keys: valid for Azure Tables, one-to-one, bounded."""

from __future__ import annotations

from hypothesis import given, strategies as st

from shared.state import MemoryStateStore
from shared.table_keys import MAX_KEY_CHARS, table_key

FORBIDDEN = set("/\\#?") | {chr(c) for c in range(0x20)} | {chr(c) for c in range(0x7F, 0xA0)}


def test_ordinary_keys_are_unchanged():
    assert table_key("1234567890123456:111:0") == "1234567890123456:111:0"


@given(st.text(max_size=2_000))
def test_every_key_is_valid(text):
    key = table_key(text)
    assert not FORBIDDEN & set(key) and len(key) <= MAX_KEY_CHARS


@given(st.text(max_size=600), st.text(max_size=600))
def test_different_texts_give_different_keys(a, b):
    if a != b:
        assert table_key(a) != table_key(b)


def test_state_keys_with_del_and_c1_characters_are_stored_apart():
    state = MemoryStateStore()
    state.put("poison", "m\x7f1", {"n": 1})
    state.put("poison", "m\x851", {"n": 2})
    state.put("poison", "m-1", {"n": 3})
    assert [state.get("poison", k)["n"] for k in ("m\x7f1", "m\x851", "m-1")] == [1, 2, 3]
