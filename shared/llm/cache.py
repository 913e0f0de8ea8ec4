"""LLM answers reused for the same failure: a job failing the same way twice does not pay twice.

The key is a hash of the model, the prompt version (prompt files and schema), the failure's fingerprint
(shared.fingerprint: error class, codes, normalized text), a digest of the excerpt with only numbers, ids,
paths and timestamps normalized, and the rules' category, which the prompt shows. The fingerprint alone
also folds quoted values away, so `main.sales` and `main.orders` missing would share an answer that names
the wrong table; the digest keeps names apart while a rerun's new ids, times and counters still hit.
k8sgpt's cache key left the model out; this one does not, so a new deployment never serves an older
model's answers.

Two levels: a small in-memory map per worker, then the state table (PartitionKey "llm-cache", RowKey the
key). The answer is stored before the guard rails, which run again on every use. Entries carry their
expiry; an expired one is a miss (and is overwritten by the next answer). A failed read is a miss and a
failed write only warns: the cache never stops a decision.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from shared.decision import utcnow
from shared.llm.schema import FailureAnalysis
from shared.state import StateStore

log = logging.getLogger(__name__)

KIND = "llm-cache"
MEMORY_ENTRIES = 256


# Run-specific parts of an error text, widest first. Names (tables, columns, classes) are kept.
_VOLATILE = tuple((re.compile(p, re.I), r) for p, r in (
    (r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "<uuid>"),
    (r"\b\d{4}-\d{2}-\d{2}[t ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:z|[+-]\d{2}:?\d{2})?", "<ts>"),
    (r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?", "<ts>"),
    (r"(?:[a-z]+:)?(?:/[\w.@$%+=~-]+){2,}/?", "<path>"),
    (r"\b0x[0-9a-f]+\b|\b(?=[0-9a-f]*\d)[0-9a-f]{8,}\b", "<hex>"),
    (r"\d+", "<n>"),
))


def detail_digest(text: str) -> str:
    """A hash of `text` with numbers, ids, paths and timestamps normalized, names kept."""
    text = text[:4000]
    for pattern, repl in _VOLATILE:
        text = pattern.sub(repl, text)
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()[:16]


def cache_key(*, model: str, prompt_version: str, fingerprint: str, rules_category: str, detail: str = "") -> str:
    """A stable key of everything the answer depends on."""
    raw = "\0".join((model, prompt_version, fingerprint, detail, rules_category))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class AnswerCache:
    """get/put of FailureAnalysis by key, with a TTL."""

    def __init__(
        self,
        store: StateStore | None,
        *,
        ttl: timedelta,
        clock: Callable[[], datetime] = utcnow,
        memory_entries: int = MEMORY_ENTRIES,
    ) -> None:
        self._store = store
        self.ttl = ttl
        self._clock = clock
        self._memory: OrderedDict[str, tuple[datetime, dict[str, Any]]] = OrderedDict()
        self._memory_entries = memory_entries
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.ttl > timedelta(0)

    def get(self, key: str) -> FailureAnalysis | None:
        """The cached answer, or None (not cached, expired, unreadable)."""
        if not self.enabled:
            return None
        now = self._clock()
        with self._lock:
            hit = self._memory.get(key)
            if hit is not None:
                self._memory.move_to_end(key)
        if hit is None:
            hit = self._read(key)
            if hit is not None:
                self._remember(key, *hit)
        if hit is None or hit[0] <= now:
            return None
        try:
            return FailureAnalysis.from_dict(hit[1])
        except ValidationError as exc:  # written by an older schema (the prompt version should have changed)
            log.warning("ignoring a cached LLM answer that no longer fits the schema: %s", exc.errors()[:1])
            return None

    def put(self, key: str, answer: FailureAnalysis, *, model: str, prompt_version: str) -> None:
        """Remember `answer`; a storage error only warns."""
        if not self.enabled:
            return
        now = self._clock()
        expires = now + self.ttl
        data = answer.to_dict()
        self._remember(key, expires, data)
        if self._store is None:
            return
        doc = {"answer": data, "model": model, "prompt_version": prompt_version,
               "stored_at": now.isoformat(), "expires_at": expires.isoformat()}
        try:
            self._store.put(KIND, key, doc)
        except Exception as exc:  # noqa: BLE001 - k8sgpt's rule: a failed cache write only warns
            log.warning("could not store the LLM answer in the cache: %s", exc)

    def _read(self, key: str) -> tuple[datetime, dict[str, Any]] | None:
        if self._store is None:
            return None
        try:
            doc = self._store.get(KIND, key)
        except Exception as exc:  # noqa: BLE001 - a cache that cannot be read is a miss
            log.warning("could not read the LLM cache: %s", exc)
            return None
        if not doc or not isinstance(doc.get("answer"), dict):
            return None
        try:
            return datetime.fromisoformat(doc["expires_at"]), doc["answer"]
        except (KeyError, TypeError, ValueError):
            return None

    def _remember(self, key: str, expires: datetime, data: dict[str, Any]) -> None:
        with self._lock:
            self._memory[key] = (expires, data)
            self._memory.move_to_end(key)
            while len(self._memory) > self._memory_entries:
                self._memory.popitem(last=False)
