"""The research assets in Dagster for one walk-forward period: wiring, lake outputs, metadata, no retraining."""

import dataclasses
import re
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from cnn_pipelines.storage import lake
from cnn_pipelines.trading.features.assets import SETTINGS, forward_returns, indicator_panel, universe
from cnn_pipelines.trading.prices.assets import raw_prices
from cnn_pipelines.trading.research.assets import CALENDAR, CHAIN_START_TAG, RS, cnn_images, cnn_model, feature_selection, image_layout, oos_predictions
from cnn_pipelines.trading.prices.resources import SyntheticPriceSource
from cnn_pipelines.trading.research.walkforward import fold_for
from cnn_pipelines.trading.research.model_assets import MODEL_PREDICTIONS
from cnn_pipelines.trading.evaluation.assets import ES, backtest, factor_tearsheet, model_leaderboard
from cnn_pipelines.trading.evaluation.metrics import oos_ic
from cnn_pipelines.trading.evaluation.study_assets import study_report
from cnn_pipelines.storage.io_manager import ParquetLakeIOManager

from cnn_pipelines_tests.conftest import lake_resources, metadata_offenders, run_range

PERIOD = "2015-03-01"
CHAIN = {CHAIN_START_TAG: PERIOD}  # the study's warm-start chain begins here (nothing trained before it)
RESEARCH = [feature_selection, image_layout, cnn_images, cnn_model, oos_predictions, *MODEL_PREDICTIONS]


def flag_test_month_jumps(root) -> None:
    """Mark every 7th label of the test month as failing the jump rule (``<label>_ok`` False), as a stored
    forward_returns partition does for a name that jumps by more than 50 %: training never sees test-month
    rows, so only evaluation can tell whether they are scored."""
    days = [k for k in lake.materialized_keys(root, "forward_returns") if k.startswith(PERIOD[:7])]
    table = lake.read_partitions(root, "forward_returns", days)
    table.loc[table.index % 7 == 3, [c for c in table.columns if c.endswith("_ok")]] = False
    lake.write_partitions(root, "forward_returns", table, days)


@pytest.fixture(scope="module")
def research_lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("lake")
    res = lake_resources(root, SyntheticPriceSource(n_tickers=25, seed=8, signal_strength=0.3))
    fold = fold_for(PERIOD, RS, CALENDAR)
    feat_start = pd.bdate_range(end=fold.train_start, periods=2)[0].strftime("%Y-%m-%d")
    feat_end = (pd.Timestamp(PERIOD) + pd.offsets.MonthEnd(0)).strftime("%Y-%m-%d")
    price_start = pd.bdate_range(end=feat_start, periods=SETTINGS.price_lookback + 1)[0].strftime("%Y-%m-%d")
    price_end = (pd.Timestamp(feat_end) + pd.offsets.BDay(10)).strftime("%Y-%m-%d")
    assert run_range([raw_prices], price_start, price_end, res).success
    assert run_range([raw_prices.to_source_asset(), universe, indicator_panel, forward_returns], feat_start, feat_end,
                     res, selection=dg.AssetSelection.assets(universe, indicator_panel, forward_returns)).success
    flag_test_month_jumps(root)
    sources = [indicator_panel.to_source_asset(), forward_returns.to_source_asset(), universe.to_source_asset(),
               raw_prices.to_source_asset()]
    first = dg.materialize([*sources, *RESEARCH], partition_key=PERIOD, resources=res, tags=CHAIN)
    again = dg.materialize([*sources, *RESEARCH], partition_key=PERIOD, resources=res, tags=CHAIN)
    return root, first, again  # checkpoints follow the IO manager's root (no CNN_LAKE_ROOT needed)


def test_one_period_materializes_every_research_asset(research_lake):
    root, first, _ = research_lake
    assert first.success
    for table in ("feature_selection", "cnn_images", "oos_predictions"):
        assert lake.partition_path(root, table, PERIOD, "period").exists()
    for doc in ("image_layout", "cnn_model"):
        assert lake.partition_path(root, doc, PERIOD, "period", "data.json").exists()
    ckpts = sorted((root / "models" / "cnn" / PERIOD).glob("epoch_*.keras"))
    assert len(ckpts) == RS.epochs


def test_metadata_has_rankings_pictures_and_ics(research_lake):
    _, first, _ = research_lake
    meta = {e.materialization.asset_key.path[-1]: e.materialization.metadata
            for e in first.get_asset_materialization_events()}
    assert meta["feature_selection"]["selected"].value.startswith("15: ")
    assert not metadata_offenders(meta)  # issue 31: rounded, no nan, no long inline lists
    assert "data:image/png;base64," in meta["feature_selection"]["mutual_information"].value
    assert "data:image/png;base64," in meta["image_layout"]["dendrograms"].value
    head, rows = meta["image_layout"]["image_rows"].value.split(": ")  # look-backs in days, not indices
    from cnn_pipelines.trading.features.assets import SETTINGS

    assert head == f"{len(SETTINGS.periods)} look-backs (days), top to bottom"
    assert sorted(int(r) for r in rows.split(", ")) == sorted(SETTINGS.periods)
    assert "data:image/png;base64," in meta["cnn_images"]["mean_image_by_decile"].value
    assert "data:image/png;base64," in meta["cnn_model"]["val_ic_heatmap"].value
    assert meta["cnn_model"]["trained_epochs_this_run"].value == RS.epochs
    # trained from scratch: every validation day is one its starting weights were not chosen on
    assert -1 <= meta["cnn_model"]["val_ic_unseen_by_start"].value <= 1
    days, first = re.match(r"(\d+) validation days from (\S+):", meta["cnn_model"]["val_days_unseen_by_start"].value).groups()
    fold = fold_for(PERIOD, RS, CALENDAR)
    assert int(days) > 20 and fold.val_start <= pd.Timestamp(first).date() < fold.cutoff
    assert meta["oos_predictions"]["rows"].value > 0
    for asset in ("feature_selection", "image_layout", "cnn_images", "cnn_model", "oos_predictions"):
        assert meta[asset]["lake_covers"].value == f"{PERIOD[:7]} .. {PERIOD[:7]} (1 monthly partition)", asset


def test_completed_period_is_not_retrained(research_lake):
    _, first, again = research_lake
    meta = {e.materialization.asset_key.path[-1]: e.materialization.metadata
            for e in again.get_asset_materialization_events()}
    assert meta["cnn_model"]["trained_epochs_this_run"].value == 0
    a = first.output_for_node("oos_predictions")
    b = again.output_for_node("oos_predictions")
    pd.testing.assert_frame_equal(a, b)


def test_duckdb_exposes_predictions_across_periods(research_lake):
    root, _, _ = research_lake
    with duckdb.connect(str(root / lake.CATALOG_FILE), read_only=True) as con:
        n, periods = con.execute("select count(*), count(distinct period) from oos_predictions").fetchone()
        cols = {r[0] for r in con.execute("describe oos_predictions").fetchall()}
    assert n > 0 and periods == 1 and {"prediction", "fwd_open_1d", "fwd_1d", "date", "ticker"} <= cols


def test_comparison_models_predict_the_same_rows_and_the_leaderboard_scores_them(research_lake, monkeypatch):
    root, first, _ = research_lake
    cnn = first.output_for_node("oos_predictions")
    for model in ("ridge", "hgb", "ar_cnn"):
        table = first.output_for_node(f"{model}_predictions")
        pd.testing.assert_frame_equal(table[["date", "ticker", "period"]], cnn[["date", "ticker", "period"]])
        assert table["prediction"].notna().mean() > (0.8 if model == "ar_cnn" else 0.999)
        assert table["prediction"].std() > 0
    monkeypatch.setenv("CNN_LAKE_ROOT", str(root))  # the evaluation assets read the lake at its root
    prices = SyntheticPriceSource(n_tickers=25, seed=8, signal_strength=0.3)
    result = dg.materialize([model_leaderboard, backtest, factor_tearsheet, study_report],
                            resources={"lake": ParquetLakeIOManager(root=str(root)), "prices": prices})
    assert result.success
    by_asset = {e.materialization.asset_key.path[-1]: e.materialization.metadata
                for e in result.get_asset_materialization_events()}
    meta = by_asset["model_leaderboard"]
    assert sorted(meta["models"].value.split(", ")) == ["ar_cnn", "cnn_ta", "hgb", "ridge"]  # ranked by mean IC
    assert "data:image/png;base64," in meta["ic_by_period"].value
    rows = [r.data for r in meta["leaderboard"].value.records]  # issue 31: tables shown inline, not markdown
    assert [r["model"] for r in rows] == meta["models"].value.split(", ") and all("net Sharpe" in r for r in rows)
    with duckdb.connect(str(root / lake.CATALOG_FILE), read_only=True) as con:
        counts = dict(con.execute("select model, count(*) from model_predictions group by model").fetchall())
        board = con.execute("select model, rank, days from model_leaderboard order by rank").fetchall()
        monthly = dict(con.execute("select model, monthly_ic from model_leaderboard").fetchall())
        every_model, cnn_rows = con.execute("""
            select count(*) filter (where n = 4), (select count(*) from model_predictions
                                                   where model = 'cnn_ta' and prediction is not null)
            from (select count(distinct model) as n from model_predictions where prediction is not null
                  group by date, ticker)""").fetchone()
    assert set(counts) == {"cnn_ta", "ridge", "hgb", "ar_cnn"} and len(set(counts.values())) == 1  # same rows
    assert [r[1] for r in board] == [1, 2, 3, 4]
    # the month ended in the lake: ar_cnn (a monthly model) has a monthly IC, the daily models none
    assert -1 <= monthly["ar_cnn"] <= 1 and all(pd.isna(monthly[m]) for m in ("cnn_ta", "ridge", "hgb"))
    trading = {r.data["model"]: r.data for r in meta["trading"].value.records}
    assert float(trading["ar_cnn"]["monthly IC"]) == round(monthly["ar_cnn"], 4) and trading["ridge"]["monthly IC"] == "n/a"
    assert {r.data["model"] for r in meta["tearsheets"].value.records} == set(trading)
    assert all(-1 <= r.data["IC 1D"] <= 1 for r in meta["tearsheets"].value.records)
    folder = Path(meta["tearsheet_folder"].value)  # one short path: four long ones ran past the page's edge
    for model in ("ar_cnn", "cnn_ta", "hgb", "ridge"):  # a tearsheet per model, from the same tearsheet code
        assert model in meta["tearsheet_files"].value
        assert "data:image/png;base64," in (folder / model / "tearsheet.html").read_text()
    common, own = (int(n) for n in re.findall(r"\d+", meta["sample"].value)[:2])
    assert (common, own) == (every_model, cnn_rows) and 0 < common <= own  # the rows the leaderboard scores
    sheet = by_asset["factor_tearsheet"]  # its 1D IC's days, and why they are fewer than the label's
    days, label_days = (int(n) for n in re.match(r"(\d+) days, .* realized day of the label \((\d+)\)",
                                                  sheet["days_scored"].value).groups())
    assert f"up to {ES.periods[-1]}D is realized" in sheet["days_scored"].value and 0 < days <= label_days
    # issue 31: the study at a glance, over the same lake
    study = by_asset["study_report"]
    preds = lake.read_partitions(root, "oos_predictions", [PERIOD], "period")
    ic, _, days = oos_ic(preds, RS.target)
    assert study["oos_ic"].value == round(ic, 4) and study["oos_days"].value == days and study["periods"].value == 1
    assert isinstance(study["oracle_ic"].value, float) and -1 <= study["oracle_ic"].value <= 1  # a synthetic market
    assert len(study["leaderboard"].value.records) == 4 and study["backtest_days"].value == days
    assert isinstance(study["net_sharpe"].value, float) and isinstance(study["tearsheet_ic_1d"].value, float)
    assert "signals" in study["not_built_yet"].value and "nightly_job" in study["not_built_yet"].value
    assert "too short to judge" in study["verdict"].value
    sources = [r.data for r in study["ic_by_source"].value.records]  # why the page shows three ICs
    assert [r["where"] for r in sources] == ["study (oos_ic)", "model_leaderboard", "factor_tearsheet (1D)"]
    assert sources[0]["IC"] == study["oos_ic"].value and sources[2]["IC"] == study["tearsheet_ic_1d"].value
    assert not metadata_offenders(by_asset), metadata_offenders(by_asset)


def test_between_retrains_a_month_is_predicted_by_the_retrain_periods_model(research_lake, monkeypatch):
    """retrain_every = 2 counted from PERIOD: April reuses March's selection, layout and checkpoints (no
    training), scores its own test images with them, and every research asset says which model it used."""
    import cnn_pipelines.trading.research.assets as research

    root, first, _ = research_lake
    res = lake_resources(root, SyntheticPriceSource(n_tickers=25, seed=8, signal_strength=0.3))
    april = "2015-04-01"
    end = (pd.Timestamp(april) + pd.offsets.MonthEnd(0)).strftime("%Y-%m-%d")
    px_from = (pd.Timestamp(PERIOD) + pd.offsets.MonthEnd(0) + pd.offsets.BDay(11)).strftime("%Y-%m-%d")
    assert run_range([raw_prices], px_from, (pd.Timestamp(end) + pd.offsets.BDay(10)).strftime("%Y-%m-%d"), res).success
    assert run_range([raw_prices.to_source_asset(), universe, indicator_panel, forward_returns], april, end, res,
                     selection=dg.AssetSelection.assets(universe, indicator_panel, forward_returns)).success
    monkeypatch.setattr(research, "RS", dataclasses.replace(RS, retrain_every=2))
    monkeypatch.setattr(research, "FIRST_PERIOD", PERIOD)
    sources = [indicator_panel.to_source_asset(), forward_returns.to_source_asset(), universe.to_source_asset(),
               raw_prices.to_source_asset()]
    result = dg.materialize([*sources, *RESEARCH], partition_key=april, resources=res)
    assert result.success
    meta = {e.materialization.asset_key.path[-1]: e.materialization.metadata
            for e in result.get_asset_materialization_events()}
    for asset in ("feature_selection", "image_layout", "cnn_model", "oos_predictions"):
        assert meta[asset]["model_period"].value == PERIOD, asset
    assert meta["cnn_model"]["retrain_month"].value is False
    for asset in ("feature_selection", "cnn_model", "oos_predictions"):  # April's page names March too
        assert meta[asset]["lake_covers"].value == f"{PERIOD[:7]} .. {april[:7]} (2 monthly partitions)", asset
    assert not (root / "models" / "cnn" / april).exists()  # nothing trained for April
    march_layout = first.output_for_node("image_layout")
    assert result.output_for_node("image_layout")["families"] == march_layout["families"]
    preds = result.output_for_node("oos_predictions")
    assert len(preds) and preds["period"].astype(str).eq(april).all() and preds["prediction"].std() > 0
    # Issue 29: ridge, hgb and ar_cnn refit every month while the CNN reused March's model. Now every model
    # follows the same anchors: April is scored by the models fitted in March, applied to April's rows.
    import pickle

    import keras

    from cnn_pipelines.trading.research.model_assets import fitted_path
    from cnn_pipelines.trading.research.periods import images_from_table

    april_images = result.output_for_node("cnn_images")
    for model in ("ridge", "hgb", "ar_cnn"):
        assert meta[f"{model}_predictions"]["model_period"].value == PERIOD, model
        assert meta[f"{model}_predictions"]["retrain_month"].value is False, model
        assert not (root / "models" / model / april).exists(), model
    for model in ("ridge", "hgb"):
        march_model = pickle.loads(fitted_path(root, model, PERIOD).read_bytes())
        got = result.output_for_node(f"{model}_predictions")["prediction"].to_numpy()
        assert got == pytest.approx(march_model.predict(images_from_table(april_images)), abs=1e-6)
    assert keras.models.load_model(fitted_path(root, "ar_cnn", PERIOD, "model.keras")) is not None


def test_several_seeds_average_their_predictions_and_report_the_spread(research_lake, monkeypatch):
    """seeds = 2 for the trained period: member 0 is the single-seed model already trained (not retrained, the
    same predictions), member 1 trains in its own folder; oos_predictions is their mean, keeps each member's
    column and reports each member's IC and their spread, and the leaderboard's note quotes it beside the s.e.
    (issue 27: renaming tickers alone had moved cnn_ta's IC by 0.04 and nothing said how much was noise)."""
    import cnn_pipelines.trading.research.assets as research

    root, first, _ = research_lake
    res = lake_resources(root, SyntheticPriceSource(n_tickers=25, seed=8, signal_strength=0.3))
    monkeypatch.setattr(research, "RS", dataclasses.replace(RS, seeds=2))
    sources = [indicator_panel.to_source_asset(), forward_returns.to_source_asset(), universe.to_source_asset(),
               raw_prices.to_source_asset(), feature_selection.to_source_asset(), image_layout.to_source_asset(),
               cnn_images.to_source_asset()]
    result = dg.materialize([*sources, cnn_model, oos_predictions], partition_key=PERIOD, resources=res, tags=CHAIN)
    assert result.success
    meta = {e.materialization.asset_key.path[-1]: e.materialization.metadata
            for e in result.get_asset_materialization_events()}
    assert meta["cnn_model"]["trained_epochs_this_run"].value == 0  # member 0: the existing model
    assert len(sorted((root / "models" / "cnn_seed1" / PERIOD).glob("epoch_*.keras"))) == RS.epochs
    doc = result.output_for_node("cnn_model")
    assert [m["seed"] for m in doc["members"]] == [research.member_seed(PERIOD, 0), research.member_seed(PERIOD, 1)]
    preds = result.output_for_node("oos_predictions")
    single = first.output_for_node("oos_predictions")
    assert preds["prediction_seed0"].to_numpy() == pytest.approx(single["prediction"].to_numpy(), abs=1e-6)
    assert not preds["prediction_seed1"].equals(preds["prediction_seed0"])
    mean = (preds["prediction_seed0"] + preds["prediction_seed1"]) / 2
    assert preds["prediction"].to_numpy() == pytest.approx(mean.to_numpy(), abs=1e-6)
    ics = [float(v) for v in meta["oos_predictions"]["ic_by_seed"].value.split(", ")]  # one line of text
    assert meta["oos_predictions"]["seeds"].value == 2 and len(ics) == 2
    assert meta["oos_predictions"]["ic_seed_spread"].value == pytest.approx(float(pd.Series(ics).std()), abs=2e-4)
    monkeypatch.setenv("CNN_LAKE_ROOT", str(root))
    board = dg.materialize([model_leaderboard], resources={"lake": ParquetLakeIOManager(root=str(root))})
    note = board.get_asset_materialization_events()[0].materialization.metadata["note"].value
    assert "cnn_ta averages 2 seeds" in note and "s.e." in note


def test_every_realized_label_is_scored_through_the_assets(research_lake):
    """Issue 29: the jump rule's training filter (``fwd_open_1d_ok``) once also dropped evaluation rows at the
    call sites, and the test of ``oos_ic`` alone could not see it come back. Through the assets: the test
    month's flagged rows are in every model's predictions, and each asset's reported IC counts them."""
    from cnn_pipelines.trading.evaluation.metrics import oos_ic

    _, first, _ = research_lake
    meta = {e.materialization.asset_key.path[-1]: e.materialization.metadata
            for e in first.get_asset_materialization_events()}
    target = RS.target
    for asset in ("oos_predictions", "ridge_predictions", "hgb_predictions", "ar_cnn_predictions"):
        table = first.output_for_node(asset).dropna(subset=["prediction"])
        flagged = table[~table[f"{target}_ok"].astype(bool) & table[target].notna()]
        assert len(flagged) > 10, asset
        everything, filtered = oos_ic(table, target), oos_ic(table[table[f"{target}_ok"].astype(bool)], target)
        assert meta[asset]["mean_daily_ic"].value == pytest.approx(everything[0], abs=1e-4), asset
        assert everything[0] != pytest.approx(filtered[0], abs=1e-6), asset


def test_a_month_waits_for_its_warm_start_source_instead_of_training_from_scratch(research_lake):
    """Issue 30: a month whose warm-start source was not in the lake trained from scratch, so its model depended
    on which run finished first (on a cluster, on the order of a backfill). The source is now a function of
    the month: without a chain start at PERIOD, PERIOD starts from February's model, which is not there, and
    the run fails naming it and the two ways on; a chain start that is not a month is refused."""
    root, _, _ = research_lake
    res = lake_resources(root, SyntheticPriceSource(n_tickers=25, seed=8, signal_strength=0.3))
    sources = [indicator_panel.to_source_asset(), forward_returns.to_source_asset(), universe.to_source_asset(),
               raw_prices.to_source_asset()]
    for tags, message in (({}, r"2015-03-01 warm-starts from the model of 2015-02-01, which is not in this lake"
                                r".*cnn/chain_start=2015-03-01"),
                          ({CHAIN_START_TAG: "2015-03-15"}, r"cnn/chain_start='2015-03-15' must be a research period")):
        result = dg.materialize([*sources, feature_selection], partition_key=PERIOD, resources=res, tags=tags,
                                raise_on_error=False)
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        error = failure.step_failure_data.error
        while error.cause is not None:
            error = error.cause
        assert re.search(message, error.message), error.message


def test_a_backfill_of_months_waits_for_each_months_warm_start_source():
    """Issue 30: a month's warm-start source is its own asset C * k months earlier (one chain, monthly: the month
    before), declared as a dependency so that a backfill through the daemon (on a cluster, months side by side)
    runs each chain in order; the first research month depends on nothing before it."""
    from dagster._core.definitions.events import AssetKeyPartitionKey

    from cnn_pipelines.trading.research.assets import FIRST_PERIOD

    sources = [indicator_panel.to_source_asset(), forward_returns.to_source_asset(), universe.to_source_asset(),
               raw_prices.to_source_asset()]
    graph = dg.Definitions(assets=[*sources, *RESEARCH],
                           resources={"lake": ParquetLakeIOManager(root="unused")}).resolve_asset_graph()
    month = (pd.Timestamp(FIRST_PERIOD) + pd.DateOffset(months=5)).strftime("%Y-%m-%d")
    before = (pd.Timestamp(month) - pd.DateOffset(months=RS.retrain_every * RS.warm_chains)).strftime("%Y-%m-%d")
    for name in ("feature_selection", "image_layout", "cnn_model"):
        key = dg.AssetKey(name)
        assert AssetKeyPartitionKey(key, before) in graph.get_parents_partitions(key, month).parent_partitions, name
        first = graph.get_parents_partitions(key, FIRST_PERIOD)
        assert not [p for p in first.parent_partitions if p.asset_key == key] and not first.required_but_nonexistent_parents_partitions
    assert not [p for p in graph.get_parents_partitions(dg.AssetKey("cnn_images"), month).parent_partitions
                if p.asset_key == dg.AssetKey("cnn_images")]  # only what a warm start reads


def test_a_universe_too_small_for_ar_cnn_leaves_it_off_the_board_instead_of_failing_the_month(research_lake,
                                                                                               tmp_path, monkeypatch):
    """A watch list of three names gives ar_cnn 36 (name, month) samples: its fit raised, research_job failed
    for the month and nothing was evaluated. Now ar_cnn predicts nothing, says why, and the leaderboard scores
    the models that could fit (here the limit is raised instead of shrinking the universe)."""
    import shutil

    import cnn_pipelines.trading.research.model_assets as model_assets
    from cnn_pipelines.trading.research.model_assets import ar_cnn_predictions, fitted_path

    root = tmp_path / "lake"
    shutil.copytree(research_lake[0], root)
    monkeypatch.setattr(model_assets, "AR_MIN_SAMPLES", 10**9)
    res = lake_resources(root, SyntheticPriceSource(n_tickers=25, seed=8, signal_strength=0.3))
    sources = [indicator_panel.to_source_asset(), forward_returns.to_source_asset(), universe.to_source_asset(),
               raw_prices.to_source_asset()]
    for month in lake.materialized_keys(root, "ar_cnn_predictions", "period"):  # other tests may add April
        result = dg.materialize([*sources, *RESEARCH], partition_key=month, resources=res, tags=CHAIN,
                                selection=[ar_cnn_predictions])
        assert result.success
    result = dg.materialize([*sources, *RESEARCH], partition_key=PERIOD, resources=res, tags=CHAIN,
                            selection=[ar_cnn_predictions])
    table = result.output_for_node("ar_cnn_predictions")
    assert len(table) and table["prediction"].isna().all()
    meta = result.asset_materializations_for_node("ar_cnn_predictions")[0].metadata
    assert re.match(r"no: ar_cnn: only \d+ training samples before the cutoff \(\d+ names over 12 months",
                    meta["fitted"].value) and meta["predicted_tickers"].value == 0
    assert meta["mean_daily_ic"].value == meta["rows_without_history"].value == "n/a (not fitted: see fitted)"
    assert lake.read_json(fitted_path(root, "ar_cnn", PERIOD, "fit.json"))["fitted"] is False
    monkeypatch.setenv("CNN_LAKE_ROOT", str(root))
    board = dg.materialize([model_leaderboard], resources={"lake": ParquetLakeIOManager(root=str(root)),
                                                           "prices": res["prices"]})
    assert board.success
    meta = board.asset_materializations_for_node("model_leaderboard")[0].metadata
    assert sorted(meta["models"].value.split(", ")) == ["cnn_ta", "hgb", "ridge"]
    assert meta["not_scored"].value == "ar_cnn (predicted nothing)"
