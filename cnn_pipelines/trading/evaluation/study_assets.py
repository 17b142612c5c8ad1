"""``study_report``: the whole study as it stands, in one place of the UI (refreshed by evaluation_job and by
the nightly job). Its headline numbers are plain metadata floats (the asset's Plots tab draws them over time),
its tables render inline, and what is missing says which job builds it."""

import dagster as dg

from cnn_pipelines.metadata import asset_result, table_value
from cnn_pipelines.plots import markdown_image
from cnn_pipelines.storage import lake, objects
from cnn_pipelines.trading.evaluation.assets import backtest, factor_tearsheet, model_leaderboard
from cnn_pipelines.trading.evaluation.study_view import study_view
from cnn_pipelines.trading.production.assets import daily_signals
from cnn_pipelines.trading.research.assets import RS

# the assets a reader goes on to for detail, in the order of the graph
LINKED = ("raw_prices", "universe", "indicator_panel", "forward_returns", "cnn_model", "oos_predictions",
          "model_leaderboard", "factor_tearsheet", "backtest", "daily_signals")


def oracle_for(prices):
    """The synthetic market's oracle IC on given rows, when the prices are the synthetic source's."""
    from cnn_pipelines.trading.prices.resources import SyntheticPriceSource

    if not isinstance(prices, SyntheticPriceSource):
        return None
    from cnn_pipelines.trading.evaluation.audit import oracle_ic
    from cnn_pipelines.trading.prices.market import market_for

    market = market_for(prices.market_config())
    return lambda rows: oracle_ic(market, rows, RS.target)


@dg.asset(deps=[model_leaderboard, factor_tearsheet, backtest, daily_signals], group_name="evaluation",
          kinds={"duckdb"}, required_resource_keys={"prices"})
def study_report(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """The study as it stands: price and feature range, universe, walk-forward periods, OOS IC with its
    Newey-West s.e. and days (and the market's oracle IC where the market is synthetic), the model leaderboard,
    the tearsheet and backtest figures with units, and the latest signals; read from the lake."""
    root = lake.default_root()
    view = study_view(root, RS.target, oracle_for(context.resources.prices))
    meta: dict = {"verdict": view.verdict, **view.numbers}
    for name, frame in view.tables.items():
        meta[name] = table_value(frame)
    if view.missing:
        meta["not_built_yet"] = dg.MetadataValue.md("\n".join(f"- **{k}**: {v}" for k, v in view.missing.items()))
    curve = lake.artifact_dir(root, "reports", "backtest") / "equity_curve.png"
    objects.pull(curve)  # drawn on another machine of a cluster
    if curve.exists():
        meta["equity_curve"] = dg.MetadataValue.md(markdown_image(curve.read_bytes(), "backtest equity curve"))
    meta["asset_pages"] = dg.MetadataValue.md(" · ".join(f"[{a}](/assets/{a})" for a in LINKED))
    context.log.info(f"study: {view.verdict}")
    return asset_result(context, meta)
