"""The rule tables (rules/*.toml): loading, validation, and fast matching.

One rule is one reviewable entry: id, category, kind (which signal it reads), pattern, confidence, comment,
and optional examples (texts it must match, checked by the tests). A new rule is a data change.

Kinds, strongest first (the order breaks ties between equal scores):
- token kinds, matched against a whole value with `fullmatch`: result_state, life_cycle_state,
  termination_code, termination_type, cluster_reason, cluster_type, error_class, sqlstate, exception,
  exception_family (the simple name of an exception no `exception` rule names, by the words it is built from);
- search kinds, matched anywhere in the cleaned text: cloud_code (case-sensitive, whole word), message and
  wording (case-insensitive). Their patterns may not repeat without a bound (`.{0,80}`, never `.*`), so no
  input can make them backtrack for long.
A search rule marked `anywhere = true` describes the *context* of a failure ("pip could not install
packages", "shuffle fetch failed") rather than a link of the cause chain: it scores the same at any depth,
so the policy's context tie-breaks (a package repository unreachable is infrastructure, not network) hold.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from shared.taxonomy import Category

from shared.classify.literals import GRAM, MAX_GAP, PARSER_AVAILABLE, rarest_gram, required_literals, unbounded

RULES_DIR = Path(__file__).with_name("rules")
KINDS: tuple[str, ...] = (
    "result_state", "life_cycle_state", "termination_code", "termination_type", "cluster_reason", "cluster_type",
    "error_class", "sqlstate", "exception", "exception_family", "cloud_code", "message", "wording",
)
TOKEN_KINDS = frozenset(KINDS[:10])
SEARCH_KINDS = frozenset(KINDS[10:])
MAX_TOKEN = 160  # longer "tokens" are not names; skipping them keeps fullmatch cheap
SEARCH_WINDOW = 12_288  # phrases are looked for in at most this much cleaned text: its head and its tail
SEARCH_HEAD = 4_096
_MAX_MATCHES_PER_RULE = 64


class RuleError(ValueError):
    """A rule file that cannot be used: the message names the file, the rule and the problem."""


@dataclass(frozen=True)
class Rule:
    """One entry of a rule table."""

    id: str
    category: Category
    kind: str
    pattern: str
    confidence: float
    comment: str
    examples: tuple[str, ...] = ()
    anywhere: bool = False  # a context rule: no depth penalty
    source: str = ""
    from_attempt: int = 1  # applies only from this attempt of a chain on (a limit that persists)

    @property
    def strength(self) -> int:
        """Lower is stronger (the issue's order of signals)."""
        return KINDS.index(self.kind)


def load_rules(directory: Path = RULES_DIR) -> tuple[Rule, ...]:
    """Every rule of every *.toml in `directory`, validated; raises RuleError naming each problem."""
    rules: list[Rule] = []
    problems: list[str] = []
    for path in sorted(directory.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            problems.append(f"{path.name}: not valid TOML: {exc}")
            continue
        for number, entry in enumerate(data.get("rule", []), start=1):
            try:
                rules.append(_rule_from(entry, path.name))
            except (KeyError, ValueError, TypeError) as exc:
                problems.append(f"{path.name} rule #{number} ({entry.get('id', '?')}): {exc}")
    problems += validate(rules)
    if problems:
        raise RuleError("invalid rules:\n  " + "\n  ".join(problems))
    return tuple(rules)


def _rule_from(entry: dict, source: str) -> Rule:
    unknown = set(entry) - {"id", "category", "kind", "pattern", "confidence", "comment", "examples", "anywhere",
                            "from_attempt"}
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}")
    return Rule(
        id=str(entry["id"]),
        category=Category(entry["category"]),
        kind=str(entry["kind"]),
        pattern=str(entry["pattern"]),
        confidence=float(entry["confidence"]),
        comment=str(entry["comment"]),
        examples=tuple(str(e) for e in entry.get("examples", ())),
        anywhere=bool(entry.get("anywhere", False)),
        source=source,
        from_attempt=int(entry.get("from_attempt", 1)),
    )


def validate(rules: list[Rule] | tuple[Rule, ...]) -> list[str]:
    """Problems with a set of rules: duplicate ids, unknown kinds, bad confidences, unsafe or broken patterns."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    for rule in rules:
        where = f"{rule.source} {rule.id}"
        if rule.id in seen:
            problems.append(f"{where}: duplicate id (also in {seen[rule.id]})")
        seen[rule.id] = rule.source
        if rule.kind not in KINDS:
            problems.append(f"{where}: unknown kind {rule.kind!r} (known: {', '.join(KINDS)})")
        if not 0 < rule.confidence <= 1:
            problems.append(f"{where}: confidence {rule.confidence} is not in (0, 1]")
        if rule.category is Category.UNKNOWN:
            problems.append(f"{where}: a rule cannot decide 'unknown'")
        if rule.from_attempt < 1 or (rule.from_attempt > 1 and rule.kind not in TOKEN_KINDS):
            problems.append(f"{where}: from_attempt must be >= 1, and only token rules can depend on the attempt")
        if rule.anywhere and rule.kind not in SEARCH_KINDS:
            problems.append(f"{where}: only search rules can be 'anywhere' (context) rules")
        if not rule.comment.strip():
            problems.append(f"{where}: no comment saying why")
        try:
            compiled = re.compile(rule.pattern)
        except re.error as exc:
            problems.append(f"{where}: pattern does not compile: {exc}")
            continue
        if compiled.groupindex:
            problems.append(f"{where}: named groups are reserved for the combined matcher")
        if rule.kind in SEARCH_KINDS and PARSER_AVAILABLE and unbounded(rule.pattern):
            problems.append(f"{where}: unbounded repeat in a search pattern; use {{0,{MAX_GAP}}} at most")
        for example in rule.examples:
            if not _matches(rule, example):
                problems.append(f"{where}: does not match its example {example[:80]!r}")
    return problems


def _matches(rule: Rule, text: str) -> bool:
    if rule.kind in TOKEN_KINDS:  # as RuleIndex.match does: error classes also by their main part
        candidates = (text, text.partition(".")[0]) if rule.kind == "error_class" else (text,)
        return any(re.fullmatch(rule.pattern, c) is not None for c in candidates)
    return _compile_search(rule).search(text if rule.kind == "cloud_code" else text.lower()) is not None


def _compile_search(rule: Rule) -> re.Pattern[str]:
    if rule.kind == "cloud_code":  # vendor codes are case-sensitive whole words: "SlowDown", "AccessDenied"
        return re.compile(rf"(?<![\w-])(?:{rule.pattern})(?![\w-])")
    # Matched against the lower-cased text; a lower-cased pattern keeps re's fast literal scanning, which
    # IGNORECASE would turn off.
    return re.compile(_lower_pattern(rule.pattern))


def _lower_pattern(pattern: str) -> str:
    """`pattern` lower-cased except escapes (\\S, \\W, \\D, \\B keep their meaning)."""
    out, escaped = [], False
    for ch in pattern:
        out.append(ch if escaped else ch.lower())
        escaped = ch == "\\" and not escaped
    return "".join(out)


class RuleIndex:
    """The rules compiled for matching: one alternation per token kind (best rule first), one prefiltered
    regex per search rule. Build once; matching never compiles."""

    def __init__(self, rules: tuple[Rule, ...]):
        self.rules = rules
        self._by_kind: dict[str, tuple[re.Pattern[str], dict[str, Rule]]] = {}
        # Rules for later attempts (a limit that persists) are looked up apart, only when the attempt is known.
        self._later = tuple(r for r in rules if r.from_attempt > 1)
        self._later_compiled = tuple((r, re.compile(r.pattern)) for r in self._later)
        for kind in TOKEN_KINDS:
            ordered = sorted((r for r in rules if r.kind == kind and r.from_attempt == 1), key=lambda r: -r.confidence)
            names = {f"r{i}": r for i, r in enumerate(ordered)}
            alternation = "|".join(f"(?P<{name}>{rule.pattern})" for name, rule in names.items()) or "(?!)"
            self._by_kind[kind] = (re.compile(alternation), names)
        self._searchers = tuple(_Searcher(r) for r in rules if r.kind in SEARCH_KINDS)
        # N-gram index: each literal a match must contain is keyed by its rarest 5-character piece, so one
        # set intersection with the text's 5-grams tells which few rules can match at all. Shorter literals
        # are tested directly.
        self._by_gram: dict[str, list[tuple[str, int]]] = {}
        self._short: list[tuple[str, int]] = []
        self._always: set[int] = set()
        for i, searcher in enumerate(self._searchers):
            if searcher.literals is None:
                self._always.add(i)
                continue
            for literal in searcher.literals:
                literal = literal.lower()
                if len(literal) < GRAM:
                    self._short.append((literal, i))
                else:
                    self._by_gram.setdefault(rarest_gram(literal), []).append((literal, i))
        self._grams = frozenset(self._by_gram)
        self._cache: dict[tuple[str, str], Rule | None] = {}

    @property
    def search_rules(self) -> tuple[Rule, ...]:
        """The rules matched against the text (cloud_code, message, wording)."""
        return tuple(s.rule for s in self._searchers)

    def match(self, kind: str, value: str) -> Rule | None:
        """The highest-confidence rule of `kind` whose pattern matches all of `value`."""
        if not value or len(value) > MAX_TOKEN:
            return None
        key = (kind, value)
        if key in self._cache:
            return self._cache[key]
        if kind == "exception":
            found = self._match_exception(value)
        elif kind == "exception_family":
            found = self._fullmatch(kind, value.rpartition(".")[2].rpartition("$")[2])
        else:
            found = self._fullmatch(kind, value)
            if found is None and kind == "error_class" and "." in value:
                found = self._fullmatch(kind, value.partition(".")[0])  # UNRESOLVED_COLUMN.WITH_SUGGESTION
        if len(self._cache) > 50_000:  # unbounded distinct tokens (ids) must not grow memory forever
            self._cache.clear()
        self._cache[key] = found
        return found

    def match_later(self, kind: str, value: str, attempt: int) -> Rule | None:
        """The most confident rule of `kind` for attempt `attempt` (>= 2) that matches all of `value`."""
        if attempt < 2 or not value or len(value) > MAX_TOKEN:
            return None
        found = [r for r, rx in self._later_compiled
                 if r.kind == kind and r.from_attempt <= attempt and rx.fullmatch(value)]
        return max(found, key=lambda r: r.confidence, default=None)

    def _fullmatch(self, kind: str, value: str) -> Rule | None:
        pattern, names = self._by_kind[kind]
        m = pattern.fullmatch(value)
        return names[m.lastgroup] if m and m.lastgroup else None

    def _match_exception(self, name: str) -> Rule | None:
        # Try `java.lang.OutOfMemoryError`, then `lang.OutOfMemoryError`, then `OutOfMemoryError` (and the
        # inner class after `$`), so a rule can name a type exactly or by its simple name; the most
        # confident match wins.
        parts = name.split(".")
        candidates = [".".join(parts[i:]) for i in range(len(parts))]
        if "$" in parts[-1]:  # a JVM inner class: SparkDriverExceptions$SparkDriverUnavailable
            candidates.append(parts[-1].rpartition("$")[2])
        best: Rule | None = None
        for candidate in candidates:
            found = self._fullmatch("exception", candidate)
            if found and (best is None or found.confidence > best.confidence):
                best = found
        return best

    def search(self, text: str, lower: str) -> Iterator[tuple[Rule, list[int]]]:
        """Each search rule that matches, with the offsets where it matched (at most a few dozen).

        Frames are gone from `text` already; if what is left is still huge (logs), phrases are looked for
        in its head and tail only, where error classes and root causes are."""
        n = len(lower)
        windows = [(0, n)] if n <= SEARCH_WINDOW else [(0, SEARCH_HEAD), (n - SEARCH_WINDOW + SEARCH_HEAD, n)]
        # One haystack for the literal checks: the windows joined by a character no literal holds.
        hay = lower if len(windows) == 1 else "\0".join(lower[lo:hi] for lo, hi in windows)
        present = {hay[i:i + GRAM] for i in range(len(hay) - GRAM + 1)}
        candidates = set(self._always)
        keyed = [pair for gram in present & self._grams for pair in self._by_gram[gram]]
        for literal, i in keyed + self._short:  # the whole literal must be there, not just its key
            if i not in candidates and literal in hay:
                candidates.add(i)
        for i in sorted(candidates):
            offsets = [o for lo, hi in windows for o in self._searchers[i].offsets(text, lower, lo, hi)]
            if offsets:
                yield self._searchers[i].rule, offsets


class _Searcher:
    """One search rule: the literals every match must contain (for the index), and the regex."""

    def __init__(self, rule: Rule):
        self.rule = rule
        self.regex = _compile_search(rule)
        self.case_sensitive = rule.kind == "cloud_code"
        pattern = rule.pattern if self.case_sensitive else _lower_pattern(rule.pattern)
        literals = required_literals(pattern) if PARSER_AVAILABLE else None
        self.literals = literals if literals and min(map(len, literals)) >= 3 else None

    def offsets(self, text: str, lower: str, lo: int = 0, hi: int | None = None) -> list[int]:
        haystack = text if self.case_sensitive else lower
        found = []
        for m in self.regex.finditer(haystack, lo, len(haystack) if hi is None else hi):
            found.append(m.start())
            if len(found) >= _MAX_MATCHES_PER_RULE:
                break
        return found


class RuleSet:
    """The shipped rules, loaded and compiled on first use (so importing the package stays cheap)."""

    @cached_property
    def index(self) -> RuleIndex:
        return RuleIndex(load_rules())


SHIPPED = RuleSet()


__all__ = ["MAX_GAP", "Rule", "RuleError", "RuleIndex", "RuleSet", "SHIPPED", "load_rules", "required_literals",
           "validate"]
