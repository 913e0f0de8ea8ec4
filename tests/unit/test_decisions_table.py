"""The decisions table (`python -m shared decisions`, `make demo`): wrapped at word boundaries, attempts
explained."""

from __future__ import annotations

import re

from shared.commands.decisions import ATTEMPT_LEGEND, format_table
from shared.notify.sample import sample_record
from shared.taxonomy import Action

LONG = ("resized job cluster 'etl_cluster' (node Standard_DS3_v2 → Standard_DS4_v2; driver Standard_DS3_v2 → "
        "Standard_DS4_v2) and repaired run 873000000000001 (repair 651000000000002)")


def test_long_cells_wrap_at_word_boundaries_and_nothing_is_cut():
    record = sample_record(Action.RETRY_WITH_NEW_PARAMS).model_copy(update={"done": LONG})
    table = format_table([record], width=40)
    words = set(LONG.split())
    cells = " ".join(line[table.splitlines()[0].index("what was done"):] for line in table.splitlines()[2:]
                     if line.strip() and not line.startswith("attempt N"))
    assert words <= set(cells.split())  # every word whole: wrapped, never cut mid-word
    assert max(len(line.rstrip()) for line in table.splitlines()[:-2]) < len(LONG)


def test_the_attempt_column_says_n_of_m_and_the_legend_explains_it():
    record = sample_record(Action.RETRY).model_copy(update={"attempt": 2, "max_attempts": 4})
    table = format_table([record])
    assert re.search(r"\b2 of 4\b", table)
    assert " ".join(table.split()).endswith(ATTEMPT_LEGEND) and "1 + MAX_RETRIES" in ATTEMPT_LEGEND


def test_no_records_says_so():
    assert format_table([]).endswith("(no decisions in that window)")
