"""Leakage audit: the real pipeline — the Dagster assets from raw_prices to oos_predictions,
writing a lake of their own — on synthetic markets whose truth is known.

* **null market** (no signal; several seeds and test months, so the IC's standard error is at most
  ``MAX_SE``): with no look-ahead its out-of-sample IC is indistinguishable from zero;
* **planted signal**: a working pipeline recovers a clearly positive IC (the oracle IC shows the ceiling);
* **planted leak** (control): the null market again, with every feature row replaced by the same ticker's
  next row (features shifted one day into the future). The audit must flag it; an audit that passes a
  pipeline that sees tomorrow proves nothing.

Markets have listings, delistings and missing bars switched on. Also here: the miniature pure-function
pipeline (``audit_ic``) the research tests use for quick signal checks.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from cnn_pipelines.storage import lake
from cnn_pipelines.storage.events import ephemeral_instance
from cnn_pipelines.trading.prices.calendar import trading_calendar
from cnn_pipelines.trading.research.cnn import daily_ic, fingerprint, predict_ensemble, train_period
from cnn_pipelines.trading.research.layout import to_images
from cnn_pipelines.trading.prices.market import MarketConfig, SyntheticMarket, market_for
from cnn_pipelines.trading.evaluation.metrics import mean_and_se
from cnn_pipelines.trading.features.panel import feature_columns, forward_returns_table, indicator_panel_table
from cnn_pipelines.trading.research.periods import fit_fold
from cnn_pipelines.trading.settings import FeatureSettings, ResearchSettings
from cnn_pipelines.trading.research.walkforward import fold_for

MAX_SE = 0.015

# ------------------------------------------------------------------------ the audit through Dagster


@dataclasses.dataclass(frozen=True)
class AuditPlan:
    """Markets and test months of the audit. Defaults: 2 seeds x 4 months for the null market (about
    170 test days of a 40-name universe: s.e. about 0.012), one month of one seed for the planted signal and
    for the leak: a strong effect needs fewer days (measured on 2 months: planted IC 0.25 at s.e. 0.022, leak
    0.62 at 0.017; on one month the s.e. grows by about sqrt(2), leaving them 8 and 25 s.e. from zero)."""

    null_seeds: tuple[int, ...] = (21, 22)
    planted_seeds: tuple[int, ...] = (23,)
    leak_seeds: tuple[int, ...] = (21,)
    periods: tuple[str, ...] = ("2016-03-01", "2016-04-01", "2016-05-01", "2016-06-01")
    planted_periods: tuple[str, ...] = ("2016-06-01",)
    leak_periods: tuple[str, ...] = ("2016-06-01",)
    planted_strength: float = 0.35
    n_tickers: int = 60
    inception: str = "2013-06-03"
    missing_rate: float = 0.005
    models: tuple[str, ...] = ("cnn_ta",)   # also audited on the null market and the leak: ridge, hgb, ar_cnn


# What `--audit` (the leakage_audit asset) runs: every comparison model beside CNN-TA, on the same markets and the
# same leak. make test runs the default plan (CNN-TA alone) to stay inside its time.
FULL_AUDIT = AuditPlan(models=("cnn_ta", "ridge", "hgb", "ar_cnn"))
# ar_cnn reads raw prices (monthly returns), not the indicator panel: the planted leak cannot reach it, so only its
# null market is judged.
LEAK_BLIND = frozenset({"ar_cnn"})


def shift_features_into_future(panel: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The planted leak: each (date, ticker) row gets the features of the ticker's next row."""
    out = panel.sort_values(["ticker", "date"], kind="stable").copy()
    out[list(columns)] = out.groupby("ticker", sort=False)[list(columns)].shift(-1)
    return out.sort_values(["date", "ticker"], kind="stable").reset_index(drop=True)


def _ranges(periods: Sequence[str], price_lookback: int, lookahead: int, train_months: int) -> dict[str, str]:
    first = pd.Timestamp(min(periods)) - pd.DateOffset(months=train_months)
    feat_start = pd.bdate_range(end=first, periods=2)[0]
    feat_end = pd.Timestamp(max(periods)) + pd.offsets.MonthEnd(0)
    return {"price_start": (feat_start - pd.offsets.BDay(price_lookback)).strftime("%Y-%m-%d"),
            "feat_start": feat_start.strftime("%Y-%m-%d"), "feat_end": feat_end.strftime("%Y-%m-%d"),
            "price_end": (feat_end + pd.offsets.BDay(lookahead)).strftime("%Y-%m-%d")}


def run_market(root: Path, strength: float, seed: int, plan: AuditPlan, periods: Sequence[str],
               leak_periods: Sequence[str] = (), log: Callable[[str], None] = print) -> dict[str, pd.DataFrame]:
    """Materialize the real trading and research assets on one synthetic market in the lake at ``root``.

    Returns the test months' predictions of each model in ``plan.models`` (key ``real``: model -> table) and,
    when ``leak_periods`` are given, those of the same pipeline re-run after shifting the stored indicator_panel
    one day into the future (``leak``)."""
    import dagster as dg

    from cnn_pipelines.trading.features.assets import LOOKAHEAD, SETTINGS, forward_returns, indicator_panel, universe
    from cnn_pipelines.trading.prices.assets import raw_prices
    from cnn_pipelines.trading.research.assets import (
        RS, cnn_images, cnn_model, feature_selection, image_layout, oos_predictions,
    )
    from cnn_pipelines.storage.io_manager import ParquetLakeIOManager
    from cnn_pipelines.trading.prices.resources import SyntheticPriceSource

    source = SyntheticPriceSource(seed=seed, n_tickers=plan.n_tickers, inception=plan.inception,
                                  signal_strength=strength, missing_rate=plan.missing_rate)
    resources = {"lake": ParquetLakeIOManager(root=str(root)), "prices": source}
    r = _ranges([*periods, *leak_periods], SETTINGS.price_lookback, LOOKAHEAD, RS.train_months)
    instance = ephemeral_instance()  # the lean event storage: one planned event per asset of a range run

    def materialize(assets, selection, **kw):
        job = dg.define_asset_job("audit", selection=selection)
        defs = dg.Definitions(assets=assets, jobs=[job], resources=resources)
        result = defs.resolve_job_def("audit").execute_in_process(instance=instance, **kw)
        if not result.success:
            raise RuntimeError(f"audit run failed for seed {seed}, strength {strength}")

    def rng(lo, hi):
        return {"tags": {"dagster/asset_partition_range_start": lo, "dagster/asset_partition_range_end": hi}}

    log(f"audit market seed {seed}, signal {strength}: prices {r['price_start']}..{r['price_end']}")
    materialize([raw_prices], dg.AssetSelection.assets(raw_prices), **rng(r["price_start"], r["price_end"]))
    features = [universe, indicator_panel, forward_returns]
    materialize([raw_prices.to_source_asset(), *features], dg.AssetSelection.assets(*features),
                **rng(r["feat_start"], r["feat_end"]))
    from cnn_pipelines.trading.research.model_assets import MODEL_PREDICTIONS, PREDICTION_TABLES

    extra = [a for a in MODEL_PREDICTIONS if a.key.path[-1].removesuffix("_predictions") in plan.models]
    research = [feature_selection, image_layout, cnn_images, cnn_model, oos_predictions, *extra]
    sources = [indicator_panel.to_source_asset(), forward_returns.to_source_asset(), raw_prices.to_source_asset()]
    tables = {m: PREDICTION_TABLES[m] for m in plan.models}

    def predictions(periods):
        for p in periods:
            log(f"audit market seed {seed}, signal {strength}: test month {p}")
            materialize([*sources, *research], dg.AssetSelection.assets(*research), partition_key=p)
        return {m: lake.read_partitions(root, t, list(periods), "period") for m, t in tables.items()}

    out = {"real": predictions(periods) if periods else {}}
    if leak_periods:
        keys = lake.materialized_keys(root, "indicator_panel")
        panel = lake.read_partitions(root, "indicator_panel", keys)
        leaked = shift_features_into_future(panel, feature_columns(SETTINGS))
        lake.write_partitions(root, "indicator_panel", leaked, keys)
        out["leak"] = predictions(leak_periods)
    return out


def summarize(preds: Sequence[pd.DataFrame], target: str, market: str, oracle: pd.Series | None = None) -> dict:
    """Mean daily rank IC of the predictions against every realized label, its standard error and days."""
    ic = pd.concat([daily_ic(p["date"].to_numpy(), p["prediction"].to_numpy(), p[target].to_numpy()) for p in preds])
    mean, se = mean_and_se(ic)
    return {"market": market, "ic": mean, "se": se, "days": int(len(ic)),
            "oracle_ic": float(oracle.mean()) if oracle is not None and len(oracle) else 0.0}


def oracle_ic(market: SyntheticMarket, rows: pd.DataFrame, target: str) -> pd.Series:
    """Daily rank IC of the market's true expected returns on the same test rows (the ceiling)."""
    er = market.expected_returns(min(rows["date"]), max(rows["date"]))
    joined = rows.merge(er, on=["date", "ticker"])
    return daily_ic(joined["date"].to_numpy(), joined["expected_return"].to_numpy(), joined[target].to_numpy())


def run_audit(plan: AuditPlan = AuditPlan(), workdir: Path | None = None,
              log: Callable[[str], None] = print) -> pd.DataFrame:
    """The three markets of the audit through the real assets; one row per market (ic, se, days, oracle) for
    CNN-TA, and a null-market and a leak row per other model of ``plan.models`` ("null market: ridge", ...)."""
    from cnn_pipelines.trading.research.assets import RS

    real_null, leak_null, planted, oracle = {}, {}, [], []
    with tempfile.TemporaryDirectory(dir=workdir, prefix="audit-") as tmp:
        for seed in sorted(set(plan.null_seeds) | set(plan.leak_seeds)):
            out = run_market(Path(tmp) / f"null-{seed}", 0.0, seed, plan,
                             plan.periods if seed in plan.null_seeds else (),
                             plan.leak_periods if seed in plan.leak_seeds else (), log)
            for model, table in out["real"].items():
                real_null.setdefault(model, []).append(table)
            for model, table in out.get("leak", {}).items():
                leak_null.setdefault(model, []).append(table)
        for seed in plan.planted_seeds:
            out = run_market(Path(tmp) / f"planted-{seed}", plan.planted_strength, seed,
                             dataclasses.replace(plan, models=("cnn_ta",)), plan.planted_periods, (), log)
            planted.append(out["real"]["cnn_ta"])
            market = market_for(MarketConfig(seed=seed, n_tickers=plan.n_tickers, inception=plan.inception,
                                             signal_strength=plan.planted_strength, missing_rate=plan.missing_rate))
            oracle.append(oracle_ic(market, planted[-1], RS.target))
    rows = [summarize(real_null["cnn_ta"], RS.target, "null market"),
            summarize(planted, RS.target, "planted signal", pd.concat(oracle)),
            summarize(leak_null["cnn_ta"], RS.target, "planted leak (control)")]
    for model in [m for m in plan.models if m != "cnn_ta"]:
        rows.append(summarize([t.dropna(subset=["prediction"]) for t in real_null[model]], RS.target,
                              f"null market: {model}"))
        if model not in LEAK_BLIND:
            rows.append(summarize(leak_null[model], RS.target, f"planted leak (control): {model}"))
    return pd.DataFrame(rows).set_index("market")


def audit_passes(null: dict, planted: dict, max_se: float = MAX_SE) -> tuple[bool, str]:
    """Null IC within 2 standard errors of zero with a standard error of at most ``max_se``, and the planted
    signal above zero by more than 2 standard errors."""
    null_ok = abs(null["ic"]) < 2 * null["se"]
    se_ok = null["se"] <= max_se
    planted_ok = planted["ic"] > 2 * planted["se"]
    why = []
    if not null_ok:
        why.append(f"null-market IC {null['ic']:+.4f} is more than 2 s.e. ({null['se']:.4f}) from zero: look-ahead?")
    if not se_ok:
        why.append(f"null-market s.e. {null['se']:.4f} above {max_se}: too few test days to tell")
    if not planted_ok:
        why.append(f"planted signal not recovered: IC {planted['ic']:+.4f} (s.e. {planted['se']:.4f})")
    return null_ok and se_ok and planted_ok, "; ".join(why) or "null IC ~ 0 and planted signal recovered"


def verdict(table: pd.DataFrame, max_se: float = MAX_SE) -> tuple[bool, str]:
    """The audit passes the real pipeline AND flags the planted leak: its IC is more than 2 standard errors
    from zero, the test a look-ahead fails (an audit that cannot see a one-day leak has no power). Every other
    model audited must have a null-market IC within 2 s.e. of zero and see the same leak."""
    real_ok, real_why = audit_passes(table.loc["null market"], table.loc["planted signal"], max_se)
    leak = table.loc["planted leak (control)"]
    flagged = bool(abs(leak["ic"]) >= 2 * leak["se"])
    why = (f"real pipeline: {real_why}; planted leak: "
           + (f"flagged (IC {leak['ic']:+.4f}, {abs(leak['ic']) / leak['se']:.1f} s.e. from zero)" if flagged
              else f"NOT flagged (IC {leak['ic']:+.4f}, s.e. {leak['se']:.4f}): the audit has no power"))
    ok = bool(real_ok) and flagged
    for market in [m for m in table.index if ": " in m]:
        r = table.loc[market]
        model = market.split(": ", 1)[1]
        if market.startswith("null market"):
            fine = bool(abs(r["ic"]) < 2 * r["se"])
            why += f"; {model} null IC {r['ic']:+.4f} (s.e. {r['se']:.4f})" + ("" if fine else ": look-ahead?")
        else:
            fine = bool(abs(r["ic"]) >= 2 * r["se"])
            why += f"; {model} leak " + ("flagged" if fine else "NOT flagged")
        ok = ok and fine
    return ok, why


# ------------------------------------------------------------- the miniature pure-function pipeline

AUDIT_FEATURES = FeatureSettings(universe_size=30, universe_window=20, universe_min_obs=18, factor_formation=20)
AUDIT_RESEARCH = ResearchSettings(train_months=9, val_months=2, mi_sample=8000, epochs=6, batch_size=128, top_k=2)
AUDIT_PERIODS = ("2016-10-01", "2016-11-01")


def fit_period(panel: pd.DataFrame, targets: pd.DataFrame, period: str, fs: FeatureSettings, rs: ResearchSettings):
    """Everything fitted for one period: (family ranking, layout, training arrays, fingerprint, data)."""
    f = fit_fold(panel, targets, fold_for(period, rs, trading_calendar(fs.calendar)), fs, rs, seed=1,
                 label=f"period {period}")
    fp = fingerprint(*f.arrays[:4], config=dataclasses.asdict(rs))
    return f.ranking, f.layout, f.arrays, fp, f.data


def audit_ic(strength: float, seed: int = 2, periods=AUDIT_PERIODS, fs: FeatureSettings = AUDIT_FEATURES,
             rs: ResearchSettings = AUDIT_RESEARCH, workdir: Path | None = None) -> dict:
    """Out-of-sample daily rank IC (mean, standard error) of the miniature pipeline, and the oracle IC of the
    market's true expected returns over the same test days. Every realized label is scored."""
    m = SyntheticMarket(MarketConfig(seed=seed, n_tickers=30, inception="2015-01-01", signal_strength=strength,
                                     late_listing_share=0.0, delisting_share=0.0))
    prices = m.prices("2015-01-01", "2016-12-31")
    panel = indicator_panel_table(prices, fs, "2015-09-01", "2016-12-31")
    targets = forward_returns_table(prices, fs, "2015-09-01", "2016-12-31")
    ics, oracle = [], []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for period in periods:
            _, layout, (x_tr, y_tr, x_va, y_va, d_va), fp, data = fit_period(panel, targets, period, fs, rs)
            res = train_period(x_tr, y_tr, x_va, y_va, d_va, rs, Path(tmp) / period, fp, log=lambda s: None)
            test = data.frame.loc[data.test & data.frame[rs.target].notna().to_numpy(bool)]
            pred = predict_ensemble(Path(tmp) / period, res.ensemble, to_images(test, layout))
            ics.append(daily_ic(test["date"].to_numpy(), pred, test[rs.target].to_numpy()))
            oracle.append(oracle_ic(m, test, rs.target))
    ic = pd.concat(ics)
    mean, se = mean_and_se(ic)
    return {"signal_strength": strength, "ic": mean, "se": se, "days": int(len(ic)),
            "oracle_ic": float(pd.concat(oracle).mean()) if strength > 0 else 0.0}

