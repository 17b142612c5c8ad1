"""Shared fixtures: a temporary lake, a tiny synthetic market, and helpers to run range materializations."""

from __future__ import annotations

import os

# Tests build partitions from 2012 on (small fixed markets), not only the demo's recent history; set before
# cnn_pipelines is imported (the partitions are defined at import). Subprocesses inherit it.
os.environ.setdefault("CNN_PARTITIONS_START", "2012-01-02")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # make test runs two workers on two cores: one compute thread each (TensorFlow's and oneDNN's pools read these
    # when they start), instead of two workers each spreading over both cores and taking turns.
    for var in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(var, "1")
from pathlib import Path

import dagster as dg
import pytest

from cnn_pipelines.storage.events import ephemeral_instance
from cnn_pipelines.storage.io_manager import ParquetLakeIOManager
from cnn_pipelines.trading.prices.resources import SyntheticPriceSource

REPO_ROOT = Path(__file__).resolve().parents[1]
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")  # CPU-only tests: skip the CUDA probe on machines without a GPU

# In-process runs (dg.materialize, execute_in_process) record their events on the project's lean event storage, the
# one dagster.yaml configures, instead of Dagster's stock one: the tests exercise what users run, and a range run
# stores one planned event per asset, not one per partition (a quarter of a research fixture's time went there).
# test_planned_partitions builds the stock storage explicitly to compare the two.
_stock_ephemeral = dg.DagsterInstance.ephemeral


def _lean_ephemeral(tempdir=None, preload=None, settings=None) -> dg.DagsterInstance:
    if tempdir is None and preload is None and settings is None:
        return ephemeral_instance()
    return _stock_ephemeral(tempdir=tempdir, preload=preload, settings=settings)


dg.DagsterInstance.ephemeral = staticmethod(_lean_ephemeral)


@pytest.fixture
def lake_root(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    root.mkdir()
    return root


@pytest.fixture
def tiny_source() -> SyntheticPriceSource:
    return SyntheticPriceSource(n_tickers=8, seed=3)


def run_range(assets: list, start: str, end: str, resources: dict, instance: dg.DagsterInstance | None = None,
              selection: str | None = None, run_config: dict | None = None) -> dg.ExecuteInProcessResult:
    """Materialize ``assets`` for the partition range [start, end] as one in-process run."""
    job = dg.define_asset_job("test_job", selection=selection or dg.AssetSelection.all())
    defs = dg.Definitions(assets=assets, jobs=[job], resources=resources)
    return defs.resolve_job_def("test_job").execute_in_process(
        instance=instance or ephemeral_instance(), tags={RANGE_START_TAG: start, RANGE_END_TAG: end},
        run_config=run_config,
    )


def lake_resources(root: Path, source) -> dict:
    return {"lake": ParquetLakeIOManager(root=str(root)), "prices": source}


# ------------------------------------------------------------------------------------- test selection and order

# Pure modules: no Dagster run, no training, no subprocess. `make test-fast` runs these (`-m fast`), and every
# module under core/ (the boundary tests of the money modules, which must stay pure).
FAST_MODULES = {
    "test_plots.py", "test_settings_file.py", "storage/test_lake.py",
    "trading/evaluation/test_backtest.py", "trading/evaluation/test_tearsheet.py",
    "trading/features/test_features.py", "trading/features/test_indicators.py", "trading/features/test_non_tradables.py",
    "trading/prices/test_dates.py", "trading/prices/test_ingestion_properties.py", "trading/prices/test_market.py",
    "trading/prices/test_sources.py", "trading/prices/test_validation.py",
}
# The longest modules (measured on 2 cores), started first so that `-n 2 --dist loadfile` does not end on one of them.
SLOW_FIRST = [
    "trading/evaluation/test_audit.py", "test_browser.py", "test_cluster.py", "trading/test_own_prices.py",
    "test_benchmarks.py",
    "trading/research/test_research_assets.py", "vision/test_vision_assets.py", "trading/evaluation/test_leaderboard.py",
    "trading/research/test_ar_cnn.py", "test_cli.py", "trading/research/test_research.py",
    "trading/research/test_retraining.py", "test_plan.py",
]


def pytest_configure(config):
    config.addinivalue_line("markers", "fast: a pure test (no Dagster run, no training, no subprocess): make test-fast")


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}

    def module(item) -> str:
        try:
            return Path(item.fspath).relative_to(here).as_posix()
        except ValueError:
            return ""

    for item in items:
        if module(item) in FAST_MODULES or module(item).startswith("core/"):
            item.add_marker(pytest.mark.fast)
    items.sort(key=lambda item: rank.get(module(item), len(rank)))  # stable: file order kept within each rank


# ------------------------------------------------------------------------------ cluster servers (issue 30)

def need_servers(*names: str) -> None:
    """Skip unless the named cluster servers ("postgres", "redis", "celery", "s3") can start here; under CI, where
    .ci/run installs them, fail instead."""
    import shutil as sh

    from cnn_pipelines.cluster.servers import ServerError, postgres_bin

    missing = []
    for name in names:
        try:
            if name == "postgres":
                import dagster_postgres  # noqa: F401
                postgres_bin()
            elif name == "redis" and sh.which("redis-server") is None:
                missing.append("redis-server (apt-get install redis-server)")
            elif name == "s3":
                import moto  # noqa: F401
                import s3fs  # noqa: F401
            elif name == "celery":
                import dagster_celery  # noqa: F401
                import redis  # noqa: F401
        except (ImportError, ServerError) as err:
            missing.append(str(err))
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"needs {'; '.join(missing)}; .ci/run installs it")
        pytest.skip(f"needs {'; '.join(missing)}")


def free_port() -> int:
    from cnn_pipelines.cluster.servers import free_port as port

    return port()


def server_dir(prefix: str) -> Path:
    """A folder under /tmp that the postgres user may enter (pytest's own folders are closed to other users)."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server on 127.0.0.1 started by the project's own script, for one test module: its URL."""
    import shutil as sh

    from cnn_pipelines.cluster.servers import start_postgres, stop_postgres

    need_servers("postgres")
    data = server_dir("cnn-pg-") / "data"
    url = start_postgres(data, free_port())
    try:
        yield url
    finally:
        stop_postgres(data)
        sh.rmtree(data.parent, ignore_errors=True)


def metadata_offenders(metadata_by_asset: dict) -> list[str]:
    """Metadata values that break the UI's formatting rules (issue 31): floats not rounded to 4 decimals, NaN or
    infinity, "nan"/"None" in text, long unrounded decimals in a table, any inline JSON list or mapping,
    and a share (accuracy, return, drawdown, turnover, volatility, a fraction) given as a bare fraction: its key
    or column must carry its unit (``_pct``, ``_bps``, ``%``). Nested JSON and table cells are checked too."""
    import math
    import re

    share = re.compile(r"accuracy|return|drawdown|turnover|share|fraction|volatility|right|coverage")
    unit = re.compile(r"pct|bps|%|points|pts")

    def number(where: str, key: str, v) -> list[str]:
        if isinstance(v, bool) or not isinstance(v, float):
            return []
        if not math.isfinite(v) or round(v, 4) != v:
            return [f"{where}: {v!r}"]
        if share.search(str(key).lower()) and not unit.search(str(key).lower()):
            return [f"{where}: share {v!r} without a unit in its name"]
        return []

    def nested(where: str, key: str, v) -> list[str]:
        if isinstance(v, dict):
            return [o for k, x in v.items() for o in nested(f"{where}.{k}", k, x)]
        if isinstance(v, list):
            return [o for x in v for o in nested(where, key, x)]
        return number(where, key, v)

    out = []
    for asset, metadata in metadata_by_asset.items():
        for key, entry in metadata.items():
            value = entry.value
            where = f"{asset}.{key}"
            if isinstance(value, float):
                out += number(where, key, value)
            elif isinstance(value, str) and not value.startswith("!["):
                if re.search(r"\bnan\b|\bNone\b", value) or re.search(r"\d\.\d{6,}", value):
                    out.append(f"{where}: {value[:80]!r}")
            elif isinstance(value, (list, dict)):  # JSON takes a line per item and quotes every key
                out.append(f"{where}: inline JSON of {len(value)} items (one line of text or a table instead)")
                out += nested(where, key, value)
            elif hasattr(value, "records"):  # a table
                for record in value.records:
                    for column, v in record.data.items():
                        out += number(f"{where}[{column}]", column, v)
    return out


@pytest.fixture(scope="module")
def s3_server():
    """moto's S3-API server on 127.0.0.1, started by the project's own script, for one test module, with this
    process's S3 client pointed at it; yields the bucket's lake root (``s3://cnn-lake/lake``)."""
    import shutil as sh

    from cnn_pipelines.cluster.servers import s3_env, start_s3, stop_s3
    from cnn_pipelines.storage import objects

    need_servers("s3")
    data, port = server_dir("cnn-s3-"), free_port()
    saved = dict(os.environ)
    os.environ.update(s3_env(port))
    objects._filesystem.cache_clear()
    try:
        yield start_s3(data, port)
    finally:
        stop_s3(data)
        os.environ.clear()
        os.environ.update(saved)
        objects._filesystem.cache_clear()
        sh.rmtree(data, ignore_errors=True)


@pytest.fixture
def s3_root(s3_server) -> str:
    """A fresh, empty lake root in the test bucket for one test."""
    import uuid

    return f"{s3_server.rsplit('/', 1)[0]}/{uuid.uuid4().hex[:12]}"
