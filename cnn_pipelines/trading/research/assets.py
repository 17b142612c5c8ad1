"""Walk-forward research assets, partitioned by monthly test period: feature_selection -> image_layout ->
cnn_images / cnn_model -> oos_predictions. Each period reads its trailing training window of the daily
feature tables; everything fitted sees only rows whose labels are realized before the purge cutoff."""

import dataclasses
import json
import zlib
from pathlib import Path

import dagster as dg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import dendrogram

from cnn_pipelines.metadata import asset_output, inline, listed, table_value
from cnn_pipelines.storage import lake, objects
from cnn_pipelines.storage.lake import stored_artifact
from cnn_pipelines.storage.io_manager import ParquetLakeIOManager
from cnn_pipelines.trading.features.assets import SETTINGS
from cnn_pipelines.trading.prices.calendar import trading_calendar
from cnn_pipelines.trading.research.layout import ImageLayout
from cnn_pipelines.trading.evaluation.metrics import daily_ic, oos_ic, seed_ic_spread
from cnn_pipelines.trading.features.panel import feature_columns
from cnn_pipelines.plots import heatmap, markdown_image, png_bytes, rounded
from cnn_pipelines.trading.research.periods import (
    fit_image_layout, image_table, images_from_table, mean_images_by_decile, period_data, require_rows,
    select_families, training_arrays,
)
from cnn_pipelines.trading.settings import current_research_settings
from cnn_pipelines.trading.partitions import PARTITIONS_START, first_research_period
from cnn_pipelines.trading.research.walkforward import fold_for
from cnn_pipelines.trading.research.retraining import (
    WarmStartNotReadyError, layout_signature, previous_retrain, retrain_period, warm_start_source,
)

RS = current_research_settings()

# The first month whose training window can have features (see partitions.py for where those start).
research_partitions = dg.MonthlyPartitionsDefinition(
    start_date=first_research_period(PARTITIONS_START, SETTINGS.price_lookback, RS.train_months, RS.first_period))


def _window(asset: str) -> dg.AssetIn:
    """The period's trailing training window plus the period itself, from a weekday-partitioned table."""
    return dg.AssetIn(asset, partition_mapping=dg.TimeWindowPartitionMapping(
        start_offset=-RS.train_months, end_offset=0, allow_nonexistent_upstream_partitions=True))


RESEARCH_ASSET = dict(partitions_def=research_partitions, io_manager_key="lake", group_name="research",
                      kinds={"keras", "parquet"})


def period_seed(period: str) -> int:
    return RS.seed + zlib.crc32(period.encode()) % 10_000


def models_dir(root: str | Path | None = None, member: int = 0) -> Path:
    """Checkpoints of the research CNN, under the lake root (the IO manager's, else $CNN_LAKE_ROOT); with
    ``seeds`` > 1, member k > 0 keeps its own folder (and so its own warm-start chain)."""
    base = lake.artifact_dir(root if root is not None else lake.default_root(), "models")
    return base / "cnn" if member == 0 else base / f"cnn_seed{member}"


def member_seed(period: str, member: int) -> int:
    """The training seed of ensemble member ``member`` for ``period`` (member 0: the period's own seed)."""
    return period_seed(period) + 1000 * member


CALENDAR = trading_calendar(SETTINGS.calendar)
FIRST_PERIOD = research_partitions.get_first_partition_key()  # retrain cadence counts from here

# One period's joined window and training images, shared by the assets of that period in one process (a run):
# each asset used to join the 12-month window and rebuild the images itself.
_PERIOD_CACHE: dict[tuple, object] = {}


def _cached(key: tuple, build):
    if None in key or key not in _PERIOD_CACHE:
        value = build()
        if None not in key:
            for old in [k for k in _PERIOD_CACHE if k[0] != key[0] or k[1] != key[1]]:
                del _PERIOD_CACHE[old]  # only this period's entries stay
            _PERIOD_CACHE[key] = value
        return value
    return _PERIOD_CACHE[key]


def _load(context, panel, targets):
    period = context.partition_key
    fold = fold_for(period, RS, CALENDAR)
    key = (period, (panel.attrs.get("lake_window"), targets.attrs.get("lake_window")), "data")
    key = key if None not in key[1] else (period, None, "data")
    data = _cached(key, lambda: period_data(panel, targets, fold, RS, CALENDAR))
    require_rows(data, f"period {period}", fold)
    return period, fold, data


def period_arrays(context, data, layout: dict):
    """The period's training and validation images and labels (built once per period and layout)."""
    lay = ImageLayout.from_json(layout)
    ident = next((k[1] for k, v in _PERIOD_CACHE.items() if v is data and k[2] == "data"), None)
    key = (context.partition_key, ident, json.dumps(lay.to_json(), sort_keys=True))
    return _cached(key, lambda: training_arrays(data, lay, RS))


CHAIN_START_TAG = "cnn/chain_start"


def chain_start(context: dg.AssetExecutionContext) -> str | None:
    """The study's first test month, from the run's ``cnn/chain_start`` tag: warm-start chains begin there
    (``make run`` tags its research runs; without the tag they begin at the first research period)."""
    value = context.run.tags.get(CHAIN_START_TAG) if context.run else None
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    if stamp != stamp.to_period("M").start_time:
        raise ValueError(f"run tag {CHAIN_START_TAG}={value!r} must be a research period (the first day of a month)")
    return str(stamp.date())


def family_list(families) -> str:
    """Feature families as one line of text ("15: RSI, WILLR, ..."), not an inline JSON list."""
    names = [str(f) for f in families]
    return f"{len(names)}: {', '.join(names)}"


def retrain_plan(period: str, start: str | None = None) -> tuple[str, str | None]:
    """(the retrain period whose model predicts ``period``, the retrain its training warm-starts from; None
    where a warm-start chain begins, see ``previous_retrain``)."""
    return (retrain_period(period, FIRST_PERIOD, RS.retrain_every),
            previous_retrain(period, FIRST_PERIOD, RS.retrain_every, RS.warm_chains, start))


def period_doc(root, table: str, period: str, why: str) -> dict:
    """A research asset's JSON output for another (earlier) period, or a clear error saying what to run."""
    path = lake.partition_path(lake.as_root(root), table, period, "period", "data.json")
    if not path.exists():
        raise lake.MissingPartitionsError(table, [f"{period} ({why}); materialize research_job for {period} first"])
    return lake.read_json(path)


def lake_table(root, table: str, period: str) -> pd.DataFrame:
    """A research table's partition for another (earlier) period, or a clear error saying what to run."""
    if not lake.partition_path(lake.as_root(root), table, period, "period").exists():
        raise lake.MissingPartitionsError(table, [f"{period}; materialize research_job for {period} first"])
    return lake.read_partitions(lake.as_root(root), table, [period], "period")


def _own_source(asset: str) -> list[dg.AssetDep]:
    """With warm starts, the asset's own partition ``retrain_every * warm_chains`` months earlier: the month its
    retrain starts from. A backfill of months then runs each chain in order (the daemon waits for a month's
    source) instead of failing months whose source is still training."""
    if not RS.warm_start:
        return []
    step = RS.retrain_every * RS.warm_chains
    return [dg.AssetDep(asset, partition_mapping=dg.TimeWindowPartitionMapping(
        start_offset=-step, end_offset=-step, allow_nonexistent_upstream_partitions=True))]


def previous_selection(root, previous: str | None, period: str) -> list[str] | None:
    """The families selected by the retrain ``period`` warm-starts from (None: warm starts off, or a chain begins
    here); raises ``WarmStartNotReadyError`` while that selection is not in the lake."""
    if not RS.warm_start or previous is None:
        return None
    if not lake.partition_path(lake.as_root(root), "feature_selection", previous, "period").exists():
        raise WarmStartNotReadyError(period, previous)
    ranking = lake.read_partitions(lake.as_root(root), "feature_selection", [previous], "period")
    return ranking.loc[ranking["selected"], "family"].astype(str).tolist()


def previous_layout(root, previous: str | None, period: str) -> ImageLayout | None:
    """The layout of the retrain ``period`` warm-starts from (None: warm starts off, or a chain begins here);
    raises ``WarmStartNotReadyError`` while that retrain is not in the lake (the month waits for it)."""
    if not RS.warm_start or previous is None:
        return None
    path = lake.partition_path(lake.as_root(root), "image_layout", previous, "period", "data.json")
    if not path.exists():
        raise WarmStartNotReadyError(period, previous)
    return ImageLayout.from_json(lake.read_json(path))


def epochs_shown(epochs: pd.DataFrame) -> pd.DataFrame:
    """A training run's epochs as its page shows them, narrow enough to show whole: loss and validation IC
    (with its s.e.) 4 decimals, seconds 1, training samples per second whole."""
    out = pd.DataFrame({"epoch": epochs["epoch"].astype(int), "loss": epochs["loss"].round(4),
                        "val IC": epochs["val_ic"].round(4)})
    if "val_ic_se" in epochs:
        out["s.e."] = epochs["val_ic_se"].round(4)
    if "seconds" in epochs:
        out["seconds"] = epochs["seconds"].round(1)
    if "train_samples_per_s" in epochs:
        out["samples/s"] = epochs["train_samples_per_s"].fillna(0).round().astype(int)
    return out


@dg.asset(ins={"indicator_panel": _window("indicator_panel"), "forward_returns": _window("forward_returns")},
          deps=_own_source("feature_selection"), **RESEARCH_ASSET)
def feature_selection(context: dg.AssetExecutionContext, indicator_panel: pd.DataFrame, forward_returns: pd.DataFrame,
                      lake: dg.ResourceParam[ParquetLakeIOManager]):
    """Mutual information of every feature with the 1-day forward return on a sample of the training window,
    averaged per family; the best 15 families are kept (with warm starts, a family selected by the previous
    retrain stays while it ranks within 15 + the buffer). Between retrains, the retrain period's selection."""
    period, fold, data = _load(context, indicator_panel, forward_returns)
    anchor, previous = retrain_plan(period, chain_start(context))
    if anchor != period:
        ranking = lake_table(lake.root, "feature_selection", anchor)
        ranking["period"] = pd.Timestamp(period).date()
        return asset_output(context, ranking, {
            "period": period, "model_period": anchor, "retrain_every_months": RS.retrain_every,
            "selected": family_list(ranking.loc[ranking["selected"], "family"]),
            "note": f"not a retrain month: the selection of {anchor}, whose model predicts {period}"})
    before = previous_selection(lake.root, previous, period)
    ranking = select_families(data, feature_columns(SETTINGS), RS, period_seed(period), before)
    ranking.insert(0, "period", pd.Timestamp(period).date())
    left_out = ranking.loc[~ranking["available"], ["family", "coverage"]]
    if len(left_out):
        context.log.warning(f"{period}: {len(left_out)} feature families cannot be computed for this universe and "
                            f"are left out of selection: {left_out['family'].tolist()} (README: minimum universe)")
    fig, ax = plt.subplots(figsize=(9, 3.6))
    ax.bar(ranking["family"], ranking["mutual_information"].fillna(0.0),
           color=np.where(ranking["selected"], "tab:blue", "lightgray"))
    ax.set_title(f"{period}: mean mutual information per family with {RS.target} (blue = selected)")
    ax.set_ylabel("mutual information (nats)")
    ax.tick_params(axis="x", rotation=90)
    return asset_output(context, ranking, {
        "period": period, "cutoff": str(fold.cutoff), "train_start": str(fold.train_start), "target": RS.target,
        "sample_rows": ranking.attrs.get("sample_rows", 0), "model_period": period,
        "previous_selection": (f"{previous}: families kept while within {RS.n_families} + {RS.selection_buffer}"
                               if before else "none (a warm-start chain begins here, or warm starts are off)"),
        "selected": family_list(ranking.loc[ranking["selected"], "family"]),
        "families_left_out": dg.MetadataValue.text(
            listed(f"{r.family} (coverage {r.coverage:.1%} of training rows)" for r in left_out.itertuples())
            or "none: every family covers enough training rows"),
        "ranking": table_value(ranking.drop(columns="period").round(4).assign(
            coverage=(100 * ranking["coverage"]).round(1)).rename(columns={"coverage": "coverage %"})),
        "mutual_information": dg.MetadataValue.md(markdown_image(png_bytes(fig), "mutual information")),
    })


@dg.asset(ins={"indicator_panel": _window("indicator_panel"), "forward_returns": _window("forward_returns")},
          deps=_own_source("image_layout"), **RESEARCH_ASSET)
def image_layout(context: dg.AssetExecutionContext, feature_selection: pd.DataFrame, indicator_panel: pd.DataFrame,
                 forward_returns: pd.DataFrame, lake: dg.ResourceParam[ParquetLakeIOManager]) -> dg.Output[dict]:
    """Ward clustering of the selected families (columns) and look-backs (rows) and a [-1, 1] scaler, all
    fitted on the training window. With warm starts and the previous retrain's families, its grid order is
    kept (same image, so its model can go on training). Between retrains, the retrain period's layout."""
    period, fold, data = _load(context, indicator_panel, forward_returns)
    anchor, previous = retrain_plan(period, chain_start(context))
    if anchor != period:
        doc = period_doc(lake.root, "image_layout", anchor, "its layout is used until the next retrain")
        return asset_output(context, doc | {"period": period, "model_period": anchor}, {
            "period": period, "model_period": anchor, "families": family_list(doc["families"]),
            "note": f"not a retrain month (every {RS.retrain_every}): the layout of {anchor}"})
    families = feature_selection.loc[feature_selection["selected"], "family"].tolist()
    before = previous_layout(lake.root, previous, period)
    layout, z_cols, z_rows = fit_image_layout(data, families, SETTINGS, RS, period_seed(period), before)
    out = layout.to_json() | {"period": period, "cutoff": str(fold.cutoff), "model_period": period}
    meta = {"period": period, "families": family_list(layout.families),
            "image_rows": f"{len(layout.period_index)} look-backs (days), top to bottom: "
                          + ", ".join(str(SETTINGS.periods[int(i)]) for i in layout.period_index),
            "model_period": period}
    if z_cols is None:
        meta["grid_order"] = f"kept from {previous} (same families); scaler refitted on this window"
        return asset_output(context, out, meta)
    meta["grid_order"] = "Ward clustering of this window"
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    dendrogram(z_cols, labels=families, ax=axes[0], leaf_rotation=90, leaf_font_size=9)
    axes[0].set_title("Ward clustering of families (image columns, left to right)")
    axes[0].set_ylabel("Ward linkage distance")
    dendrogram(z_rows, labels=[str(p) for p in SETTINGS.periods], ax=axes[1], leaf_rotation=90, leaf_font_size=9)
    axes[1].set_title("Ward clustering of look-backs (image rows, top to bottom)")
    axes[1].set_xlabel("look-back (days)")
    fig.tight_layout()
    meta["dendrograms"] = dg.MetadataValue.md(markdown_image(png_bytes(fig), "dendrograms"))
    return asset_output(context, out, meta)


@dg.asset(ins={"indicator_panel": _window("indicator_panel"), "forward_returns": _window("forward_returns")},
          **RESEARCH_ASSET)
def cnn_images(context: dg.AssetExecutionContext, image_layout: dict, indicator_panel: pd.DataFrame,
               forward_returns: pd.DataFrame):
    """The test period's 15x15 images (same builder as training) with their realized targets."""
    period, fold, data = _load(context, indicator_panel, forward_returns)
    table = image_table(data, ImageLayout.from_json(image_layout), period)
    meta = {"period": period, "rows": len(table), "dates": int(table["date"].nunique()) if len(table) else 0}
    means = mean_images_by_decile(table[table[f"{RS.target}_ok"]], RS.target) if len(table) else {}
    if means:
        fig, axes = plt.subplots(1, len(means), figsize=(1.3 * len(means), 1.8))
        for ax, (d, img) in zip(np.atleast_1d(axes), means.items()):
            ax.imshow(img, vmin=-0.5, vmax=0.5, cmap="RdBu_r")
            ax.set_title(f"decile {d}", fontsize=9)
            ax.axis("off")
        fig.suptitle(f"Mean test image by realized {RS.target} decile (1 = worst)")
        meta["mean_image_by_decile"] = dg.MetadataValue.md(markdown_image(png_bytes(fig), "mean images"))
    return asset_output(context, table, meta)


def _ic_heatmap(directory: Path) -> str | None:
    """Validation IC by epoch x period over every trained period (from the checkpoint states)."""
    rows = {}
    objects.pull(directory, "state.json")  # months trained on other machines of a cluster
    for state in sorted(directory.glob("*/state.json")):
        epochs = lake.read_json(state)["epochs"]
        rows[state.parent.name] = {e["epoch"]: e["val_ic"] for e in epochs}
    if not rows:
        return None
    frame = pd.DataFrame(rows).sort_index()
    lim = max(0.05, float(np.nanmax(np.abs(frame.to_numpy()))))
    return markdown_image(heatmap(frame, "validation IC (epoch x period)", -lim, lim), "IC heatmap")


@dg.asset(ins={"indicator_panel": _window("indicator_panel"), "forward_returns": _window("forward_returns")},
          deps=_own_source("cnn_model"), **RESEARCH_ASSET)
def cnn_model(context: dg.AssetExecutionContext, image_layout: dict, indicator_panel: pd.DataFrame,
              forward_returns: pd.DataFrame, lake: dg.ResourceParam[ParquetLakeIOManager]) -> dg.Output[dict]:
    """CNN-TA trained on the period's training window through tf.data, a checkpoint per epoch; the top-k
    epochs by daily validation IC form the ensemble. With warm starts it starts from the previous retrain's
    best checkpoint when the image is the same grid, and stops when validation IC stops improving. Resumes
    after the last completed epoch. Between retrains (retrain_every > 1): the retrain period's model."""
    from cnn_pipelines.trading.research.cnn import FLOPS_PER_SAMPLE_FORWARD, fingerprint, train_period
    from cnn_pipelines.trading.research.study import choose_precision, train_config

    period, fold, data = _load(context, indicator_panel, forward_returns)
    anchor, previous = retrain_plan(period, chain_start(context))
    if anchor != period:
        doc = period_doc(lake.root, "cnn_model", anchor, "its model predicts this month")
        reused = doc | {"period": period, "model_period": anchor, "trained_epochs_this_run": 0}
        return asset_output(context, reused, {
            "period": period, "model_period": anchor, "retrain_month": False, "checkpoints": doc["checkpoints"],
            "ensemble_epochs": inline(doc["ensemble"]),
            "note": f"not a retrain month (every {RS.retrain_every}): the model fitted for {anchor} "
                    f"(cutoff before {anchor}) predicts {period}"})
    lay = ImageLayout.from_json(image_layout)
    arrays = period_arrays(context, data, image_layout)
    x_tr, y_tr, x_va, y_va, d_va = arrays
    dtype, precision_why = choose_precision(arrays, RS, models_dir(lake.root), period_seed(period),
                                            log=context.log.info, period=period)
    members = []
    for member in range(RS.seeds):  # member 0 is the single model of seeds = 1, unchanged
        seed, root = member_seed(period, member), models_dir(lake.root, member)
        init, started = (warm_start_source(root, previous, period, lay) if RS.warm_start
                         else (None, "from scratch: warm starts are off (CNN_WARM_START=0)"))
        config = train_config(RS, period, seed, init, dtype)
        fp = fingerprint(x_tr, y_tr, x_va, y_va, config=config)
        ckpt = root / period
        rs = dataclasses.replace(RS, seed=seed)
        context.log.info(f"{period}" + (f", seed {member + 1}/{RS.seeds}" if RS.seeds > 1 else "")
                         + f": {started}; {precision_why}")
        result = train_period(x_tr, y_tr, x_va, y_va, d_va, rs, ckpt, fp, log=context.log.info, init=init,
                              patience=RS.patience if init is not None else None, dtype=dtype,
                              state_extra={"layout": layout_signature(lay), "started_from": started})
        members.append({"seed": seed, "checkpoints": str(ckpt.resolve()), "ensemble": result.ensemble, "init": init,
                        "best_val_ic": float(result.epochs["val_ic"].max()), "started_from": started,
                        "result": result, "config": config, "fingerprint": fp})
    first = members[0]
    result, config, fp, ckpt, started = (first["result"], first["config"], first["fingerprint"],
                                         Path(first["checkpoints"]), first["started_from"])
    unseen_ic, unseen_days, unseen_from = unseen_validation_ic(ckpt, result.ensemble, arrays,
                                                               previous if first["init"] is not None else None)
    summary = {
        "period": period, "checkpoints": str(ckpt.resolve()), "fingerprint": fp, "ensemble": result.ensemble,
        "epochs": result.epochs.to_dict("records"), "config": config, "train_rows": int(len(x_tr)),
        "val_rows": int(len(x_va)), "trained_epochs_this_run": result.trained_epochs, "model_period": period,
        "started_from": started, "stopped_early": result.stopped_early, "dtype": dtype,
        "members": [{k: m[k] for k in ("seed", "checkpoints", "ensemble", "best_val_ic", "started_from")}
                    for m in members],
    }
    meta = {
        "period": period, "train_rows": len(x_tr), "val_rows": len(x_va), "ensemble_epochs": inline(result.ensemble),
        "trained_epochs_this_run": result.trained_epochs,
        "best_val_ic": rounded(float(result.epochs["val_ic"].max()), 4, "n/a (no validation IC)"),
        "epochs": table_value(epochs_shown(result.epochs)),
        "flops_per_sample_forward": FLOPS_PER_SAMPLE_FORWARD, "model_period": period, "retrain_month": True,
        "started_from": started, "epochs_trained": int(len(result.epochs)), "stopped_early": result.stopped_early,
        "precision": precision_why,
        "val_ic_unseen_by_start": rounded(unseen_ic, 4, "n/a (no validation day after the start's own)"),
        "val_days_unseen_by_start": dg.MetadataValue.md(
            f"{unseen_days} validation days from {unseen_from}: the ensemble's validation IC on the days its "
            f"starting weights were not chosen on (all of them when trained from scratch)"),
    }
    if np.isfinite(result.samples_per_s):
        meta["train_samples_per_s"] = round(float(result.samples_per_s))
    if RS.seeds > 1:
        meta["seeds"] = RS.seeds
        meta["best_val_ic_by_seed"] = inline([rounded(m["best_val_ic"], 4, "n/a") for m in members])
    heat = _ic_heatmap(models_dir(lake.root))
    if heat:
        meta["val_ic_heatmap"] = dg.MetadataValue.md(heat)
    return asset_output(context, summary, meta)


def unseen_validation_ic(ckpt: Path, ensemble: list[int], arrays, source: str | None) -> tuple[float, int, str]:
    """(mean daily IC, days, first day) of the ensemble on the validation days after ``source``'s own validation
    window (the warm start's period; None: every validation day). Those are days neither the start nor its
    choice saw, so this IC is not flattered by a re-used holdout."""
    from cnn_pipelines.trading.research.cnn import predict_ensemble

    _, _, x_va, y_va, d_va = arrays
    dates = pd.to_datetime(pd.Series(d_va)).dt.date.to_numpy()
    first = fold_for(source, RS, CALENDAR).cutoff if source else (min(dates) if len(dates) else None)
    fresh = dates >= first if first is not None else np.zeros(len(dates), bool)
    if not fresh.any() or not ensemble:
        return float("nan"), 0, str(first)
    ic = daily_ic(dates[fresh], predict_ensemble(ckpt, ensemble, x_va[fresh]), np.asarray(y_va)[fresh])
    return (float(ic.mean()) if len(ic) else float("nan")), int(len(ic)), str(first)


@dg.asset(**RESEARCH_ASSET)
def oos_predictions(context: dg.AssetExecutionContext, cnn_model: dict, cnn_images: pd.DataFrame,
                    lake: dg.ResourceParam[ParquetLakeIOManager]):
    """The ensemble's predictions for every (date, ticker) of the period, next to the realized returns."""
    from cnn_pipelines.trading.research.cnn import predict_ensemble

    period = context.partition_key
    members = cnn_model.get("members") or [{"checkpoints": cnn_model["checkpoints"], "ensemble": cnn_model["ensemble"]}]
    images = images_from_table(cnn_images)
    # checkpoints trained on another machine of a cluster: their place in this machine's mirror of the lake
    preds = [predict_ensemble(stored_artifact(lake.root, m["checkpoints"]), m["ensemble"], images)
             .astype(np.float32) for m in members]
    keep = ["date", "ticker", "period", *[c for c in cnn_images.columns if c.startswith("fwd_")]]
    out = cnn_images[keep].copy()
    out.insert(3, "prediction", np.mean(preds, axis=0).astype(np.float32))
    ic, se, days = oos_ic(out, RS.target)  # every realized label
    by_seed = {}
    if len(preds) > 1:  # each member's own predictions and IC: how much of the IC is training noise
        for k, p in enumerate(preds):
            out[f"prediction_seed{k}"] = p
        spread = seed_ic_spread(out, RS.target)
        by_seed = {"seeds": spread["seeds"], "ic_by_seed": inline(spread["ic_by_seed"]),
                   "ic_seed_spread": rounded(spread["ic_seed_spread"], 4, "n/a (one finite IC)")}
    return asset_output(context, out, {
        **by_seed,
        "period": period, "rows": len(out), "dates": int(out["date"].nunique()) if len(out) else 0,
        "target": RS.target, "realized_labels": int(out[RS.target].notna().sum()),
        "mean_daily_ic": rounded(ic, 4, "n/a (no realized labels yet)"),
        "ic_standard_error": rounded(se, 4, "n/a (fewer than two days)"), "ic_days": days,
        "ensemble_epochs": inline(cnn_model["ensemble"]),
        "model_period": cnn_model.get("model_period", period),
    })
