"""Metadata helpers: lists stay one short line whatever a universe's size (issue 31's formatting rules)."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from cnn_pipelines.metadata import inline, listed, percent, percent_value, short_list, table_value

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
    # one line of text: "none", not "[]"; never a JSON list taking a line per item
    assert isinstance(value, dg.TextMetadataValue) and value.value == (text if items else "none")


def test_a_quarantined_universe_is_one_line_naming_the_first_tickers():
    tickers = [f"M{i:03d}" for i in range(44)]
    assert listed(tickers) == "M000, M001, M002, M003, M004, M005, M006, M007, M008, M009 and 34 more (44 in all)"


def test_any_iterable_is_listed_and_a_limit_below_one_shows_one():
    assert listed(iter(["A", "B", "C"]), 2) == "A, B and 1 more (3 in all)"
    assert listed({"only"}) == "only"
    assert listed(["A", "B"], 0) == "A and 1 more (2 in all)"


def test_a_table_shows_rounded_float32_as_rounded_and_gaps_as_n_a():
    frame = pd.DataFrame({"mean activation": np.float32([0.1484, 6.004]), "IC": [0.0123, np.nan]})
    rows = [r.data for r in table_value(frame).records]
    assert [r["mean activation"] for r in rows] == [0.1484, 6.004]  # not 0.14839999377727509
    assert [r["IC"] for r in rows] == ["0.0123", "n/a"]


def test_a_share_reads_as_a_rounded_percentage_and_a_missing_one_says_so():
    assert percent(0.910234) == 91.02 and percent(0.5, 1) == 50.0
    assert percent(float("nan"), missing="no test images") == "no test images"


def test_a_share_that_does_not_exist_is_text_not_a_crash():
    assert percent_value(0.5) == dg.MetadataValue.float(50.0)
    assert percent_value(float("nan")) == dg.MetadataValue.text("n/a (nothing to count)")


def test_the_formatting_check_names_each_kind_of_offender():
    """The check every end-to-end test runs on the UI's metadata must be able to fail, once per rule."""
    from cnn_pipelines_tests.conftest import metadata_offenders

    good = {"ic": dg.MetadataValue.float(0.0895), "annual_return_pct": dg.MetadataValue.float(595.5),
            "models": short_list(["cnn_ta", "ridge"]), "ensemble_epochs": inline([6, 7, 8]),
            "sample": inline({"days": 46, "dropped_pct": 29.4}),
            "stats": table_value(pd.DataFrame({"statistic": ["Sharpe"], "value": [5.99]}))}
    assert metadata_offenders({"asset": good}) == []
    bad = {"mean_daily_ic": dg.MetadataValue.float(0.05112123648709017),
           "annual_return": dg.MetadataValue.float(5.955),
           "note": dg.MetadataValue.text("IC nan over None days"),
           "models": dg.MetadataValue.json(["cnn_ta", "ridge"]),
           "stats": table_value(pd.DataFrame({"turnover": [1.538]}))}
    found = metadata_offenders({"asset": bad})
    assert [f.split(":")[0] for f in found] == ["asset.mean_daily_ic", "asset.annual_return", "asset.note",
                                                 "asset.models", "asset.stats[turnover]"], found
