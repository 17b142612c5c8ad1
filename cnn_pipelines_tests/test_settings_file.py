"""One settings file (cnn_pipelines.yaml), read alike by every entry point; environment variables override it.
Partitions never start at a date computed from today (before issue 27 the demo's start moved every month, so
materialized partitions fell out of the definition)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from cnn_pipelines.settings_file import SettingsFileError, project_env
from cnn_pipelines.trading.partitions import FIXED_START, default_start
from cnn_pipelines.trading.prices.resources import FilePriceSource, price_source_from_env


def write(tmp_path, text: str):
    path = tmp_path / "cnn_pipelines.yaml"
    path.write_text(text)
    return {"CNN_SETTINGS": str(path)}


def test_the_file_sets_and_the_environment_overrides(tmp_path):
    env = write(tmp_path, "price_source: files\nprice_files: /data/vendor\nexchange: XTKS\nnon_tradables: [SPY, QQQ]\n")
    got = project_env(env)
    assert (got["CNN_PRICE_SOURCE"], got["CNN_EXCHANGE"], got["CNN_NON_TRADABLES"]) == ("files", "XTKS", "SPY,QQQ")
    assert project_env({**env, "CNN_EXCHANGE": "XLON"})["CNN_EXCHANGE"] == "XLON"
    source = price_source_from_env(env)
    assert isinstance(source, FilePriceSource) and (source.path, source.exchange) == ("/data/vendor", "XTKS")


def test_an_unknown_key_names_itself_and_the_known_ones(tmp_path):
    with pytest.raises(SettingsFileError, match=r"unknown setting\(s\) \['price_sorce'\].*price_source"):
        project_env(write(tmp_path, "price_sorce: files\n"))


def test_the_committed_file_is_the_defaults():
    """The repository's cnn_pipelines.yaml sets nothing that changes make run (synthetic, offline)."""
    got = project_env({})
    assert {k: v for k, v in got.items() if k.startswith("CNN_")} == {"CNN_PRICE_SOURCE": "synthetic"}


def test_partitions_start_follows_the_setting_then_the_files_then_2012(tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    pd.DataFrame({"Date": ["1999-01-02", "1999-01-04"], "Open": 1.0, "High": 1.0, "Low": 1.0, "Close": 1.0,
                  "Volume": 1.0}).to_csv(files / "AAA.csv", index=False)  # 1999-01-02 is a Saturday
    env = write(tmp_path, f"price_source: files\nprice_files: {files}\n")
    assert default_start(env) == "1999-01-04"
    assert default_start({**env, "CNN_PARTITIONS_START": "2005-03-01"}) == "2005-03-01"
    assert default_start(write(tmp_path, "price_source: synthetic\n")) == FIXED_START


def test_no_partitions_definition_depends_on_today(monkeypatch):
    """The start computed as if today were a month and a year later is the same (the demo's start used to be
    the month of today minus the demo's history)."""
    import types

    import cnn_pipelines.trading.partitions as partitions

    starts = set()
    for today in (dt.date(2026, 12, 3), dt.date(2027, 1, 15), dt.date(2028, 6, 1)):
        fake_date = type("FakeDate", (dt.date,), {"today": classmethod(lambda cls, d=today: d)})
        monkeypatch.setattr(partitions, "dt", types.SimpleNamespace(date=fake_date, timedelta=dt.timedelta),
                            raising=False)
        starts.add(partitions.default_start({"CNN_PRICE_SOURCE": "synthetic", "CNN_PRESET": "demo"}))
    assert starts == {FIXED_START}
