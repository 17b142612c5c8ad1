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
import json
import os
import subprocess
import sys
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
from cnn_pipelines.trading.evaluation.metrics import mean_and_se, newey_west_se
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
    retrain_every: int = 1                  # the retrain cadence the research assets run under (a subprocess
                                            # with CNN_RETRAIN_EVERY when it is not the settings' own)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> AuditPlan:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(text).items()})


# What `--audit` (the leakage_audit asset) runs: every comparison model beside CNN-TA, on the same markets and the
# same leak, then the same again under a retrain cadence of 2 months. make test runs the default plan (CNN-TA
# alone, monthly) to stay inside its time.
FULL_AUDIT = AuditPlan(models=("cnn_ta", "ridge", "hgb", "ar_cnn"))
# Under the cadence two of the four null months and one of the two leak months are predicted by the model fitted
# for the month before (the periods are moved so that each run starts on a retrain month): a reused model, its
# layout and its scaler must not see the later month, and a leak in the retrain month's training must still show
# in the month it is reused. No planted signal: the leak control already shows the audit's power.
CADENCE_AUDIT = AuditPlan(models=("cnn_ta", "ridge", "hgb", "ar_cnn"), retrain_every=2, planted_seeds=(),
                          leak_periods=("2016-05-01", "2016-06-01"))
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
        CHAIN_START_TAG, RS, cnn_images, cnn_model, feature_selection, image_layout, oos_predictions,
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
        for p in periods:  # each market's months are one warm-start chain from its first month
            log(f"audit market seed {seed}, signal {strength}: test month {p}")
            materialize([*sources, *research], dg.AssetSelection.assets(*research), partition_key=p,
                        tags={CHAIN_START_TAG: periods[0]})
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
    """Mean daily rank IC of the predictions against every realized label, its standard error and days. ``se``
    is Newey-West over each market's days (adjacent labels share a price, a month's model persists); ``se_iid``
    the naive one, for comparison."""
    blocks = [daily_ic(p["date"].to_numpy(), p["prediction"].to_numpy(), p[target].to_numpy()) for p in preds]
    ic = pd.concat(blocks)
    mean, se_iid = mean_and_se(ic)
    return {"market": market, "ic": mean, "se": newey_west_se(blocks), "se_iid": se_iid, "days": int(len(ic)),
            "oracle_ic": float(oracle.mean()) if oracle is not None and len(oracle) else 0.0}


def oracle_ic(market: SyntheticMarket, rows: pd.DataFrame, target: str) -> pd.Series:
    """Daily rank IC of the market's true expected returns on the same test rows (the ceiling)."""
    er = market.expected_returns(min(rows["date"]), max(rows["date"]))
    joined = rows.merge(er, on=["date", "ticker"])
    return daily_ic(joined["date"].to_numpy(), joined["expected_return"].to_numpy(), joined[target].to_numpy())


def aligned_to_cadence(periods: Sequence[str], first: str, every: int) -> tuple[str, ...]:
    """``periods`` moved forward by the fewest whole months that make the first a retrain month (counted from
    research period ``first`` every ``every`` months): a run that starts on a month between retrains would
    need a model the run never fitted."""
    if not periods:
        return ()
    from cnn_pipelines.trading.research.retraining import months_from

    shift = -months_from(first, periods[0]) % every
    return tuple(str((pd.Period(pd.Timestamp(p), "M") + shift).start_time.date()) for p in periods)


def run_audit(plan: AuditPlan = AuditPlan(), workdir: Path | None = None,
              log: Callable[[str], None] = print) -> pd.DataFrame:
    """The audit's markets through the real assets; one row per market (ic, se, days, oracle). The default plan
    gives CNN-TA's null market, planted signal and planted leak, and a null-market and a leak row per other model
    of ``plan.models`` ("null market: ridge", ...). Under a retrain cadence (``plan.retrain_every`` > 1) every
    model's rows carry it ("null market: cnn_ta, retrain every 2") and the run happens in a subprocess with
    ``CNN_RETRAIN_EVERY`` set, since the research assets read their settings once, at import."""
    from cnn_pipelines.trading.research.assets import FIRST_PERIOD, RS

    if plan.retrain_every != RS.retrain_every:
        return _run_in_subprocess(plan, workdir, log)
    plan = dataclasses.replace(plan, **{k: aligned_to_cadence(getattr(plan, k), FIRST_PERIOD, plan.retrain_every)
                                        for k in ("periods", "planted_periods", "leak_periods")})
    if plan.retrain_every > 1:
        log(f"audit under retrain_every={plan.retrain_every}: null months {', '.join(plan.periods)}; "
            f"leak months {', '.join(plan.leak_periods)}")
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
    suffix = f", retrain every {plan.retrain_every}" if plan.retrain_every > 1 else ""
    rows, models = [], list(plan.models)
    if not suffix:
        rows = [summarize(real_null["cnn_ta"], RS.target, "null market"),
                summarize(planted, RS.target, "planted signal", pd.concat(oracle)),
                summarize(leak_null["cnn_ta"], RS.target, "planted leak (control)")]
        models.remove("cnn_ta")
    for model in models:
        if model in real_null:
            rows.append(summarize([t.dropna(subset=["prediction"]) for t in real_null[model]], RS.target,
                                  f"null market: {model}{suffix}"))
        if model not in LEAK_BLIND and model in leak_null:
            rows.append(summarize(leak_null[model], RS.target, f"planted leak (control): {model}{suffix}"))
    return pd.DataFrame(rows, columns=["market", "ic", "se", "se_iid", "days", "oracle_ic"]).set_index("market")


def _run_in_subprocess(plan: AuditPlan, workdir: Path | None, log: Callable[[str], None]) -> pd.DataFrame:
    """``run_audit(plan)`` in a fresh interpreter whose settings carry the plan's retrain cadence."""
    with tempfile.TemporaryDirectory(dir=workdir, prefix="audit-cadence-") as tmp:
        out = Path(tmp) / "table.parquet"
        env = {**os.environ, "CNN_RETRAIN_EVERY": str(plan.retrain_every)}
        cmd = [sys.executable, "-m", "cnn_pipelines.trading.evaluation.audit", plan.to_json(), str(out), tmp]
        with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
            tail: list[str] = []
            for line in proc.stdout:
                tail = [*tail[-40:], line.rstrip()]
                if line.startswith("audit "):
                    log(line.rstrip())
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"the audit under retrain_every={plan.retrain_every} failed "
                               f"(exit {proc.returncode}):\n" + "\n".join(tail))
        return pd.read_parquet(out)


def null_bound(tests: int) -> float:
    """Standard errors a null-market IC may sit from zero when ``tests`` null markets are judged together: 2 for
    one (the usual 95 %), Bonferroni beyond (2.5 for 4, 2.7 for 8), so a pipeline without look-ahead fails the
    audit by chance at most 5 % of the time however many models it judges, instead of 1 - 0.95^k."""
    from scipy.stats import norm

    return 2.0 if tests <= 1 else max(2.0, float(norm.ppf(1 - 0.025 / tests)))


def audit_passes(null: dict, planted: dict, max_se: float = MAX_SE, bound: float = 2.0) -> tuple[bool, str]:
    """Null IC within ``bound`` (2) standard errors of zero with a standard error of at most ``max_se``, and the
    planted signal above zero by more than 2 standard errors."""
    null_ok = abs(null["ic"]) < bound * null["se"]
    se_ok = null["se"] <= max_se
    planted_ok = planted["ic"] > 2 * planted["se"]
    why = []
    if not null_ok:
        why.append(f"null-market IC {null['ic']:+.4f} is more than {bound:.2f} s.e. ({null['se']:.4f}) from zero: "
                   "look-ahead?")
    if not se_ok:
        why.append(f"null-market s.e. {null['se']:.4f} above {max_se}: too few test days to tell")
    if not planted_ok:
        why.append(f"planted signal not recovered: IC {planted['ic']:+.4f} (s.e. {planted['se']:.4f})")
    return null_ok and se_ok and planted_ok, "; ".join(why) or "null IC ~ 0 and planted signal recovered"


def verdict(table: pd.DataFrame, max_se: float = MAX_SE) -> tuple[bool, str]:
    """The audit passes the real pipeline AND flags the planted leak: its IC is more than 2 standard errors
    from zero, the test a look-ahead fails (an audit that cannot see a one-day leak has no power). Every other
    model (and cadence) audited must have a null-market IC near zero and see the same leak. With k null markets
    judged, "near" is ``null_bound(k)`` standard errors (2 for CNN-TA alone, 2.73 for --audit's eight)."""
    nulls = [m for m in table.index if m.startswith("null market")]
    bound = null_bound(len(nulls))
    real_ok, real_why = audit_passes(table.loc["null market"], table.loc["planted signal"], max_se, bound)
    leak = table.loc["planted leak (control)"]
    flagged = bool(abs(leak["ic"]) >= 2 * leak["se"])
    why = (f"real pipeline: {real_why}; planted leak: "
           + (f"flagged (IC {leak['ic']:+.4f}, {abs(leak['ic']) / leak['se']:.1f} s.e. from zero)" if flagged
              else f"NOT flagged (IC {leak['ic']:+.4f}, s.e. {leak['se']:.4f}): the audit has no power"))
    ok = bool(real_ok) and flagged
    if len(nulls) > 1:
        why += f"; {len(nulls)} null markets judged together: each within {bound:.2f} s.e. of zero (Bonferroni)"
    for market in [m for m in table.index if ": " in m]:
        r = table.loc[market]
        model = market.split(": ", 1)[1]
        if market.startswith("null market"):
            fine = bool(abs(r["ic"]) < bound * r["se"])
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


if __name__ == "__main__":  # the audit under another retrain cadence: python -m ... PLAN_JSON OUT.parquet WORKDIR
    from cnn_pipelines.trading.research.assets import RS as _RS

    _plan = AuditPlan.from_json(sys.argv[1])
    if _plan.retrain_every != _RS.retrain_every:  # a settings file that overrides the environment: never recurse
        sys.exit(f"the research settings run retrain_every={_RS.retrain_every}, the plan {_plan.retrain_every}")
    _table = run_audit(_plan, Path(sys.argv[3]), log=lambda m: print(m, flush=True))
    _table.to_parquet(sys.argv[2])
