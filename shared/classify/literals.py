"""Which literals a regular expression needs, read from Python's own regex parser: the rule index keys rules by
them (a rule is only tried on a text that holds one), and validation refuses unbounded repeats with it.

The parser is a private module of `re`; where it is missing, there is no prefilter (same results, slower).
"""

from __future__ import annotations

try:
    from re import _constants as _sre_c, _parser as _sre_p  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - other Pythons
    _sre_c = _sre_p = None

PARSER_AVAILABLE = _sre_p is not None
MAX_GAP = 120  # the longest bounded repeat a search pattern may use

GRAM = 5
# How common a character is in failure texts (most common first): the rarest piece of a literal makes the
# most selective index key.
_COMMON = " etaoinsrlcdhupmgfy.b_w:-/v0k1x2'\"(),=j3q4z5687[9]"
_RANK = {ch: i for i, ch in enumerate(_COMMON)}


def _selectivity(text: str) -> int:
    return sum(_RANK.get(ch.lower(), len(_COMMON)) for ch in text)


# Words in almost every failure text: an index key taken from them would select everything.
_UBIQUITOUS = ("exception", "error", "failed", "failure", "request", "unexpected", "connection", "invalid",
               "exceeded", "caused", "status", "found", "value", "the ", "table", "while", "could not",
               "cannot", "operation", "expected", "spark", "java.", "org.apache", "python", "databricks",
               "terminated", "message", "details", "cluster", "server", "service", "attempt", "provided")


def rarest_gram(literal: str) -> str:
    """The piece of `literal` that selects fewest texts: its rarest characters, never a ubiquitous word."""
    grams = [literal[i:i + GRAM] for i in range(len(literal) - GRAM + 1)]
    return max(grams, key=lambda g: _selectivity(g) - (1000 if any(g in w for w in _UBIQUITOUS) else 0))


def _parse(pattern: str):  # noqa: ANN202 - a private sre tree
    return _sre_p.parse(pattern)


def unbounded(pattern: str) -> bool:
    """True if the pattern repeats anything without an upper bound (or beyond MAX_GAP)."""
    repeats = (_sre_c.MAX_REPEAT, _sre_c.MIN_REPEAT, _sre_c.POSSESSIVE_REPEAT)

    def walk(sub) -> bool:  # noqa: ANN001
        for op, av in sub:
            if op in repeats:
                if av[1] is _sre_c.MAXREPEAT or av[1] > MAX_GAP or walk(av[2]):
                    return True
            elif op is _sre_c.SUBPATTERN and walk(av[-1]):
                return True
            elif op is _sre_c.BRANCH and any(walk(alt) for alt in av[1]):
                return True
            elif op in (_sre_c.ASSERT, _sre_c.ASSERT_NOT) and walk(av[1]):
                return True
            elif op is _sre_c.ATOMIC_GROUP and walk(av):
                return True
        return False

    return walk(_parse(pattern))


def required_literals(pattern: str) -> frozenset[str] | None:
    """Strings one of which every match of `pattern` contains, or None if none can be derived."""

    def best_of(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
        # The more selective set: the one whose weakest literal has the rarest characters ("403" beats
        # "code"), and only literals of 3+ characters count.
        def score(lits: frozenset[str]) -> int:
            return min(_selectivity(lit) if len(lit) >= 3 else -1 for lit in lits)

        if a is None or (b is not None and score(b) > score(a)):
            return b
        return a

    def walk(sub) -> frozenset[str] | None:  # noqa: ANN001
        best: frozenset[str] | None = None
        run: list[str] = []
        for op, av in sub:
            if op is _sre_c.LITERAL:
                run.append(chr(av))
                continue
            if run:
                best = best_of(best, frozenset({"".join(run)}))
                run = []
            if op is _sre_c.AT:
                continue
            if op is _sre_c.SUBPATTERN:
                best = best_of(best, walk(av[-1]))
            elif op is _sre_c.ATOMIC_GROUP:
                best = best_of(best, walk(av))
            elif op is _sre_c.BRANCH:
                alternatives = [walk(alt) for alt in av[1]]
                if all(alternatives):
                    best = best_of(best, frozenset().union(*alternatives))  # type: ignore[arg-type]
            elif op in (_sre_c.MAX_REPEAT, _sre_c.MIN_REPEAT, _sre_c.POSSESSIVE_REPEAT) and av[0] >= 1:
                best = best_of(best, walk(av[2]))
        if run:
            best = best_of(best, frozenset({"".join(run)}))
        return best

    return walk(_parse(pattern))
