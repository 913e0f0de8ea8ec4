"""Read the structure of a failure text: its causes in order, which one is the root, and the codes it names.

The labeling policy decides by the root cause, so this module's job is to find it:
- a JVM trace puts the root last (`Caused by:` ... the last one is innermost);
- a Py4JJavaError wraps a JVM trace after `: `; a stage failure names the task's exception after `(executor N): `;
- a Python traceback ends with its exception, and `raise ... from` chains put the *cause first* (the blocks
  between "The above exception was the direct cause ..." markers are read innermost-first);
- Python reprs nest causes inline: `SSLError(SSLEOFError(8, 'EOF ...'))`.
Each exception mention starts a cause; the cause's rank says how deep it is (higher = closer to the root).
Stack frames, notebook source lines and traceback furniture are dropped first, so a variable named
`memory_stats` in a code line cannot look like a signal.

Every regex here is linear: possessive quantifiers or bounded repeats only, and a lookbehind that lets a
token match start only at a token boundary.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from functools import lru_cache

# Huge traces (get-output returns up to 5 MB): the error class sits at the head, the root cause at the tail.
MAX_CHARS = 24_576
HEAD_CHARS = 6_144
CAUSE_LINES_HEAD = 200
CAUSE_LINES_TAIL = 800

_FRAME = re.compile(
    r"""\s*(?:
        at\s[\w$.<>/\[\]-]{1,300}\(                        # JVM frame
      | \.\.\.\s\d+\s(?:more|common\sframes\somitted)        # JVM elided frames
      | File\s["</]                                          # Python frame (CPython "…", IPython <command-…> or /path)
      | (?:[\w.]+\s+)?Traceback\s\(most\srecent\scall\slast\)  # traceback header (IPython puts the type first)
      | -{10,}\s*$                                           # IPython rule line
      | -*>\s*\d+\s                                          # IPython current-line arrow
    )""",
    re.X,
)
_NUMBERED_SOURCE = re.compile(r"\s*(?:-*>\s*)?\d+\s")  # IPython source listing lines: "     25 while ..."
_CARETS = re.compile(r"[\s^~]*\^[\s^~]*")  # Python 3.11 position markers
_CHAIN_MARKERS = (
    "The above exception was the direct cause of the following exception",
    "During handling of the above exception, another exception occurred",
)
# A dotted name; possessive parts and the lookbehind keep it linear on a 100 KB run of "a.a.a…".
_QNAME = re.compile(r"(?<![\w$.])(?:[A-Za-z_][\w$]*+\.)*[A-Za-z_][\w$]*+")
_EXC_SUFFIXES = (
    "Exception", "Error", "Failure", "Interrupt", "Exit", "Iteration", "Throwable", "Fault", "Timeout",
    "Denied", "Canceled", "Cancelled", "Conflict", "NotFound", "Unavailable", "Exceeded",
)
_EXC_MODULES = frozenset({"exceptions", "errors", "errorfactory", "error"})
_BARE_EXCEPTIONS = frozenset({"KeyboardInterrupt", "StopIteration", "SystemExit", "GeneratorExit", "NoSuchKey",
                              "NoSuchBucket", "ExpiredToken", "gaierror", "herror"})
_LOWER_QUALIFIED = frozenset({"socket.timeout", "socket.gaierror", "socket.herror", "ssl.SSLError"})
# Every name is_exception_name accepts contains one of these (a suffix, a bare name, a module part): a line
# without any cannot open a cause, and is skipped without looking at each of its words.
_NAME_HINT = re.compile(r"Exception|Error|Failure|Interrupt|Exit|Iteration|Throwable|Fault|Timeout|Denied|Cancel"
                        r"|Conflict|NotFound|Unavailable|Exceeded|NoSuch|ExpiredToken|error|timeout|exceptions")
_CAUSE_PREFIXES = frozenset({"", "Caused by", "Suppressed", "E", "Error Message", "ERROR"})
# UPPER_SNAKE codes: Spark/Delta error classes, termination codes, cluster termination reasons.
_UPPER = re.compile(r"(?<![\w.$-])[A-Z][A-Z0-9]*+(?:_[A-Z0-9]++)++(?:\.[A-Z][A-Z0-9_]*+)?(?!\w)")
_SQLSTATE = re.compile(
    r"(?i:sql[ _]?state)[\s:=\[\]\"'(]{0,4}([0-9A-Z]{5})(?![0-9A-Za-z])"
    r"|\(\s*'([0-9A-Z]{5})',\s*[\"']\["  # pyodbc: ('42S02', "[42S02] ...")
    r"|['\"]C['\"]:\s?['\"]([0-9A-Z]{5})['\"]"  # Postgres wire-protocol fields (pg8000, redshift_connector): 'C': '57014'
    r"|\b\d{6} \(([0-9A-Z]{5})\):"  # Snowflake connector: 002003 (42S02): ...
)


@dataclass(frozen=True)
class Token:
    """A code or name found in the cleaned text, with where it was found."""

    value: str
    offset: int
    bracketed: bool = False


@dataclass(frozen=True)
class Cause:
    """One link of the cause chain: where it starts in the cleaned text and the exception that opens it."""

    offset: int
    exception: str | None
    rank: int = 0


@dataclass(frozen=True)
class Parsed:
    """The cleaned text and what was found in it; offsets index `text` (and `lower`, same length)."""

    text: str
    lower: str
    causes: tuple[Cause, ...]  # in text order
    codes: tuple[Token, ...]  # UPPER_SNAKE tokens (bracketed error classes flagged)
    sqlstates: tuple[Token, ...]
    named: tuple[Token, ...]  # exception names written in prose, not opening a cause: weaker evidence
    line_starts: tuple[int, ...]
    cause_offsets: tuple[int, ...]  # causes[i].offset, for bisect

    @property
    def root_rank(self) -> int:
        return max((c.rank for c in self.causes), default=0)

    @property
    def root(self) -> Cause:
        """The innermost cause (the last of the deepest rank)."""
        return max(self.causes, key=lambda c: (c.rank, c.offset))

    def cause_at(self, offset: int) -> Cause:
        index = bisect.bisect_right(self.cause_offsets, offset) - 1
        return self.causes[max(index, 0)]

    def rank_at(self, offset: int) -> int:
        return self.cause_at(offset).rank

    def line_bounds(self, offset: int) -> tuple[int, int]:
        """Where the line holding `offset` starts and ends, without scanning it (a line may be 64 KB)."""
        index = max(bisect.bisect_right(self.line_starts, offset) - 1, 0)
        start = self.line_starts[index] if self.line_starts else 0
        end = self.line_starts[index + 1] - 1 if index + 1 < len(self.line_starts) else len(self.text)
        return start, end

    def line_at(self, offset: int) -> str:
        start, end = self.line_bounds(offset)
        return self.text[start:end]

    def cause_text(self, cause: Cause, limit: int = 600) -> str:
        """The text of one cause: from its start to the next cause's start (bounded)."""
        index = bisect.bisect_right(self.cause_offsets, cause.offset)
        end = self.cause_offsets[index] if index < len(self.cause_offsets) else len(self.text)
        return self.text[cause.offset: min(end, cause.offset + limit)].strip()


def bound(text: str) -> str:
    """At most MAX_CHARS of `text`: the head (where error classes are) and the tail (where root causes are)."""
    if len(text) <= MAX_CHARS:
        return text
    return text[:HEAD_CHARS] + "\n…\n" + text[-(MAX_CHARS - HEAD_CHARS):]


def parse(text: str) -> Parsed:
    """Clean `text` (bounded) and find its causes, codes and SQLSTATEs."""
    lines, blocks = _clean_lines(bound(text))
    cleaned = "\n".join(lines)
    lower = cleaned.lower()
    if len(lower) != len(cleaned):  # a few non-ASCII characters change length when lowered; keep offsets exact
        lower = "".join(ch.lower() if len(ch.lower()) == 1 else ch for ch in cleaned)
    line_starts, pos = [], 0
    for line in lines:
        line_starts.append(pos)
        pos += len(line) + 1
    raw: list[tuple[int, str | None, int]] = [(0, None, blocks[0] if blocks else 0)]  # an implicit first cause
    prose: list[Token] = []
    for index, line in _cause_lines(lines):
        base = line_starts[index]
        if line.lstrip().startswith("[") and _UPPER.match(line.lstrip(), 1):
            raw.append((base, None, blocks[index]))  # "[ERROR_CLASS] message" opens a cause of its own
        named: list[tuple[int, str]] = []
        for start, name in _mentions(line, named):
            raw.append((base + start, name, blocks[index]))
        prose.extend(Token(name, base + start) for start, name in named)
    causes = _rank(raw)
    codes = _distinct(
        Token(m.group(), m.start(), m.start() > 0 and cleaned[m.start() - 1] == "[" and cleaned[m.end():m.end() + 1] == "]")
        for m in _UPPER.finditer(cleaned)
    )
    sqlstates = _distinct(Token(next(g for g in m.groups() if g), m.start()) for m in _SQLSTATE.finditer(cleaned))
    return Parsed(cleaned, lower, causes, codes, sqlstates, _distinct(prose), tuple(line_starts),
                  tuple(c.offset for c in causes))


def _cause_lines(lines: list[str]):  # noqa: ANN202 - a generator of (index, line)
    """The lines that may open a cause: all of them, or for a chain thousands of lines deep, its first
    CAUSE_LINES_HEAD (the wrappers) and last CAUSE_LINES_TAIL (the root): the middle stays searchable text."""
    if len(lines) <= CAUSE_LINES_HEAD + CAUSE_LINES_TAIL:
        yield from enumerate(lines)
        return
    yield from enumerate(lines[:CAUSE_LINES_HEAD])
    start = len(lines) - CAUSE_LINES_TAIL
    yield from enumerate(lines[start:], start=start)


def _distinct(tokens) -> tuple[Token, ...]:  # noqa: ANN001 - an iterable of Token
    """One token per (value, bracketed): the last occurrence, which is the deepest in a JVM chain. A text
    repeating a code 10,000 times then costs one lookup, not 10,000."""
    last: dict[tuple[str, bool], Token] = {}
    for token in tokens:
        last[(token.value, token.bracketed)] = token
    return tuple(sorted(last.values(), key=lambda t: t.offset))


def _clean_lines(text: str) -> tuple[list[str], list[int]]:
    """Message lines only (no frames, no source listings), and each line's chain block (counted from the top)."""
    lines: list[str] = []
    block_of: list[int] = []
    block = 0
    frame_indent = -1  # >= 0 while inside a Python frame: the File line's indentation
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if frame_indent >= 0:
            indent = len(line) - len(line.lstrip())
            if indent > frame_indent or _NUMBERED_SOURCE.match(line) or _CARETS.fullmatch(line):
                continue  # source line or marker under a frame
            frame_indent = -1
        if stripped.startswith(_CHAIN_MARKERS):
            block += 1
            continue
        if _FRAME.match(line):
            if stripped.startswith("File"):
                frame_indent = len(line) - len(line.lstrip())
            continue
        if _CARETS.fullmatch(line):
            continue
        lines.append(line.rstrip())
        block_of.append(block)
    return lines, block_of


def _mentions(line: str, prose: list[tuple[int, str]] | None = None) -> list[tuple[int, str]]:
    """(column, qualified name) of each exception that opens a cause on this line; names written in prose
    ("cannot recover from MemoryError while ...") are added to `prose` instead."""
    found: list[tuple[int, str]] = []
    if not _NAME_HINT.search(line):
        return found
    end_of_text = len(line.rstrip())
    # Inside a JSON object's string (a logged request body, a malformed record's content) a name is data the
    # error quotes, not a cause. Counted incrementally, so a long line is scanned once, not once per name.
    seen, quotes, depth = 0, 0, 0
    for m in _QNAME.finditer(line):
        name = m.group()
        if not is_exception_name(name):
            continue
        quotes += line.count('"', seen, m.start())
        depth += line.count("{", seen, m.start()) - line.count("}", seen, m.start())
        seen = m.start()
        if depth > 0 and quotes % 2 == 1:
            continue
        after = line[m.end(): m.end() + 1]
        # Only a short prefix can be a cause prefix ("Caused by:"); never slice a long line per name.
        before = line[: m.start()].strip().rstrip(":").strip() if m.start() <= 40 else "…"
        if after in (":", "(") or m.end() >= end_of_text or before in _CAUSE_PREFIXES:
            if name.rpartition(".")[2] in ("Exception", "Error") and (before or after != ":"):
                continue  # a bare "Exception"/"Error" counts only as a line's own header: "Exception: boom"
            found.append((m.start(), name))
        elif prose is not None and name.rpartition(".")[2] not in ("Exception", "Error"):
            prose.append((m.start(), name))
    return found


@lru_cache(maxsize=4096)
def is_exception_name(name: str) -> bool:
    """True for names shaped like exception types: java.io.IOException, KeyboardInterrupt, botocore...NoSuchKey."""
    module, _, last = name.rpartition(".")
    if not last or len(last) > 120:
        return False
    if last in _BARE_EXCEPTIONS or name in _LOWER_QUALIFIED:
        return True
    if not (last[0].isupper() or (last[0] == "_" and last[1:2].isupper())) or last.isupper():
        return False
    if last.endswith(_EXC_SUFFIXES):
        # An unqualified single word ("Denied:", "Timeout:") is prose; a type name is CamelCase or qualified.
        return bool(module) or sum(ch.isupper() for ch in last) >= 2
    # databricks.sdk.errors.platform.NotFound, botocore.errorfactory.NoSuchKey, psycopg2.errors.QueryCanceled
    return bool(module) and not _EXC_MODULES.isdisjoint(module.split("."))


def _rank(raw: list[tuple[int, str | None, int]]) -> tuple[Cause, ...]:
    """Rank causes by depth (0 = outermost): in a Python `raise ... from` chain the first block is the
    innermost and each later block wraps it; within a block, a later cause is deeper (JVM `Caused by`)."""
    raw.sort(key=lambda r: r[0])
    dedup: list[tuple[int, str | None, int]] = []
    for item in raw:
        if dedup and item[0] == dedup[-1][0]:
            dedup[-1] = item if item[1] else dedup[-1]
        else:
            dedup.append(item)
    order = sorted(range(len(dedup)), key=lambda i: (-dedup[i][2], i))
    ranks = {index: rank for rank, index in enumerate(order)}
    return tuple(Cause(off, name, ranks[i]) for i, (off, name, _) in enumerate(dedup))


def simple_name(name: str | None) -> str | None:
    """`java.lang.OutOfMemoryError` -> `OutOfMemoryError`."""
    return name.rpartition(".")[2] if name else None
