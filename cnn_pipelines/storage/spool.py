"""A date-partitioned table too large for memory, built in pieces (e.g. ticker shards of the indicator panel).

Each piece is split by month into a local temp folder as it arrives; the lake then writes the table month by
month (``lake.write_spooled``). Peak memory is one piece or one month of the table, never the whole table. Nothing
reaches the lake until that commit, so a run that fails halfway leaves every stored month as it was.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


class SpooledTable:
    """Pieces of one long (date, ticker, ...) table, staged per month on local disk until the lake commits them.

    ``template``: an empty frame with the table's columns and types (the schema when no piece has rows)."""

    def __init__(self, template: pd.DataFrame, directory: str | Path | None = None) -> None:
        from cnn_pipelines.storage.lake import to_arrow

        self.schema = to_arrow(template).schema.remove_metadata()
        self.dir = Path(tempfile.mkdtemp(prefix="cnn-spool-", dir=directory))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.dir, True)
        self._pieces: dict[str, list[Path]] = {}
        self.day_rows: Counter[str] = Counter()
        self.day_tickers: Counter[str] = Counter()  # pieces hold disjoint tickers, so counts add up
        self.tickers: set[str] = set()

    def add(self, piece: pd.DataFrame) -> None:
        """Stage one piece (its rows may span many months)."""
        from cnn_pipelines.storage.lake import to_arrow

        if piece.empty:
            return
        table = to_arrow(piece).replace_schema_metadata(None)
        if table.schema.names != self.schema.names:
            raise ValueError(f"spooled piece has columns {table.schema.names[:5]}..., expected {self.schema.names[:5]}...")
        table = table.cast(self.schema)
        days = pd.to_datetime(piece["date"]).dt.strftime("%Y-%m-%d").to_numpy()
        for day, group in piece.groupby(days, sort=False)["ticker"]:
            self.day_rows[day] += len(group)
            self.day_tickers[day] += group.nunique()
        self.tickers.update(piece["ticker"].astype(str).unique())
        months = np.array([d[:7] for d in days])
        for month in np.unique(months):
            part = self.dir / f"month={month}" / f"{sum(map(len, self._pieces.values())):06d}.parquet"
            part.parent.mkdir(exist_ok=True)
            pq.write_table(table.filter(pa.array(months == month)), part, compression="lz4")
            self._pieces.setdefault(str(month), []).append(part)

    @property
    def days(self) -> list[str]:
        """The days that have rows, sorted."""
        return sorted(self.day_rows)

    @property
    def rows(self) -> int:
        return int(sum(self.day_rows.values()))

    def month(self, month: str) -> pa.Table:
        """All staged rows of ``month`` (YYYY-MM), sorted by (date, ticker); an empty table if none."""
        parts = self._pieces.get(month)
        if not parts:
            return self.schema.empty_table()
        table = pa.concat_tables([pq.read_table(p) for p in parts])
        return table.sort_by([("date", "ascending"), ("ticker", "ascending")])

    def close(self) -> None:
        """Remove the staged files (also done when the object is garbage-collected)."""
        self._cleanup()
