"""Metadata helpers: lists stay one short line whatever a universe's size (issue 31's formatting rules)."""

from __future__ import annotations

import dagster as dg
from hypothesis import given
from hypothesis import strategies as st

from cnn_pipelines.metadata import listed, short_list

NAMES = st.lists(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.", min_size=1, max_size=6), max_size=300)


@given(items=NAMES, limit=st.integers(1, 20))
def test_a_list_shows_at_most_limit_items_and_counts_the_rest(items, limit):
    text = listed(items, limit)
    shown = items[:limit]
    assert text.startswith(", ".join(shown))
    if len(items) <= limit:
        assert text == ", ".join(items)
    else:
        assert text.endswith(f" and {len(items) - limit} more ({len(items)} in all)")
    value = short_list(items, limit)
    if len(items) <= limit:
        assert isinstance(value, dg.JsonMetadataValue) and value.value == items
    else:
        assert isinstance(value, dg.TextMetadataValue) and value.value == text


def test_a_quarantined_universe_is_one_line_naming_the_first_tickers():
    tickers = [f"M{i:03d}" for i in range(44)]
    assert listed(tickers) == "M000, M001, M002, M003, M004, M005, M006, M007, M008, M009 and 34 more (44 in all)"


def test_any_iterable_is_listed_and_a_limit_below_one_shows_one():
    assert listed(iter(["A", "B", "C"]), 2) == "A, B and 1 more (3 in all)"
    assert listed({"only"}) == "only"
    assert listed(["A", "B"], 0) == "A and 1 more (2 in all)"
