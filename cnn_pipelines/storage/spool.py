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
        """Stage one piece (its rows may span many months): sorted by date, each month is a zero-copy slice."""
        from cnn_pipelines.storage.lake import to_arrow

        if piece.empty:
            return
        table = to_arrow(piece).replace_schema_metadata(None)
        if table.schema.names != self.schema.names:
            raise ValueError(f"spooled piece has columns {table.schema.names[:5]}..., expected {self.schema.names[:5]}...")
        table = table.cast(self.schema)
        days = table.column("date").to_numpy().astype("datetime64[D]")
        if len(days) > 1 and (days[1:] < days[:-1]).any():
            order = np.argsort(days, kind="stable")
            table, days = table.take(pa.array(order)), days[order]
        frame = pd.DataFrame({"day": days, "ticker": table.column("ticker").to_numpy(zero_copy_only=False)})
        per_day = frame.groupby("day")["ticker"].agg(["size", "nunique"])
        for day, (size, unique) in zip(per_day.index.strftime("%Y-%m-%d"), per_day.to_numpy()):
            self.day_rows[day] += int(size)
            self.day_tickers[day] += int(unique)
        self.tickers.update(frame["ticker"].unique())
        months = days.astype("datetime64[M]")
        starts = np.flatnonzero(np.r_[True, months[1:] != months[:-1]])
        for lo, hi in zip(starts, np.r_[starts[1:], len(months)]):
            month = str(months[lo])
            part = self.dir / f"month={month}" / f"{sum(map(len, self._pieces.values())):06d}.arrow"
            part.parent.mkdir(exist_ok=True)
            with pa.OSFile(str(part), "wb") as sink, pa.ipc.new_file(sink, self.schema) as writer:
                writer.write_table(table.slice(lo, hi - lo))  # Arrow IPC, uncompressed: written at disk speed
            self._pieces.setdefault(month, []).append(part)

    def detach(self) -> dict:
        """Hand the staged pieces over (to the spool that will ``absorb`` them): they outlive this object."""
        self._cleanup.detach()
        return {"pieces": self._pieces, "day_rows": self.day_rows, "day_tickers": self.day_tickers,
                "tickers": self.tickers}

    def absorb(self, state: dict) -> None:
        """Take over the pieces another spool staged (``detach``), e.g. in a worker process: its tickers must be
        disjoint from ours."""
        for month, parts in state["pieces"].items():
            self._pieces.setdefault(month, []).extend(parts)
        self.day_rows.update(state["day_rows"])
        self.day_tickers.update(state["day_tickers"])
        self.tickers.update(state["tickers"])

    @property
    def rows(self) -> int:
        return int(sum(self.day_rows.values()))

    def month(self, month: str) -> pa.Table:
        """All staged rows of ``month`` (YYYY-MM), sorted by (date, ticker); an empty table if none."""
        parts = self._pieces.get(month)
        if not parts:
            return self.schema.empty_table()
        table = pa.concat_tables([pa.ipc.open_file(pa.memory_map(str(p))).read_all() for p in parts])
        return table.sort_by([("date", "ascending"), ("ticker", "ascending")])

    def close(self) -> None:
        """Remove the staged files (also done when the object is garbage-collected)."""
        self._cleanup()
