"""The Dagster UI against `dagster dev -w workspace.yaml` on 127.0.0.1: it serves the page and lists the
project's assets (GraphQL, no browser needed), and in a real browser (headless Chromium driven by Playwright)
shows the asset graph, a job's runs, per-partition metadata, a picture in an asset's metadata, and one raw_prices partition
launched from the UI that runs to success. Screenshots land in ``artifacts/screenshots/`` (git-ignored; CI
keeps them as artefacts).

Needs Debian's ``chromium`` (``.ci/run`` installs it) and the ``playwright`` package (the dev extra); without
the browser the test is skipped, except under CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from cnn_pipelines_tests.conftest import REPO_ROOT, free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = REPO_ROOT / "artifacts" / "screenshots"
RANGE = ("2021-06-01", "2021-06-30")  # the seeded trading range; UI-launched partition below
LAUNCHED = "2021-07-01"

pytestmark = pytest.mark.timeout(900)


def _need_browser():
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing = "the playwright package (pip install -e '.[dev]')"
    else:
        missing = None if os.path.exists(CHROMIUM) else f"{CHROMIUM} (apt-get install chromium)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test needs {missing}; .ci/run installs it")
        pytest.skip(f"needs {missing}")


def _graphql(url: str, query: str, variables: dict | None = None) -> dict:
    return requests.post(f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30).json()


RUNS = "{ runsOrError { ... on Runs { results { runId jobName status tags { key value } } } } }"


def _runs(url: str) -> list[dict]:
    return _graphql(url, RUNS)["data"]["runsOrError"]["results"]


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ui")
    home = tmp / "home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = dict(os.environ, DAGSTER_HOME=str(home), CNN_LAKE_ROOT=str(tmp / "lake"), CNN_SYNTHETIC_TICKERS="12",
               CNN_PRICE_SOURCE="synthetic")
    seeds = [["price_history_job", "--partition-range", "2019-10-01...2021-05-31"],
             ["trading_job", "--partition-range", f"{RANGE[0]}...{RANGE[1]}"]]
    # through the code location, as make run does: both launches in one process (one import of the project)
    # and the study report over what the lake holds then (prices and features; nothing trained yet)
    script = ("import sys; from cnn_pipelines.launch import main\n"
              f"for args in {seeds!r}:\n    code = main(args)\n    if code: sys.exit(code)\n"
              "import dagster as dg\n"
              "from cnn_pipelines.trading.evaluation.study_assets import study_report\n"
              "from cnn_pipelines.trading.prices.resources import price_source_from_env\n"
              "with dg.DagsterInstance.get() as instance:\n"
              "    ok = dg.materialize([study_report], instance=instance, resources={'prices': price_source_from_env()})\n"
              "sys.exit(0 if ok.success else 1)")
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    port = free_port()
    dagster = str(Path(sys.executable).with_name("dagster"))
    server = subprocess.Popen([dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
                              cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 240
        while True:
            assert server.poll() is None, "dagster dev exited early"
            try:
                if _graphql(url, "{ assetNodes { id } }")["data"]["assetNodes"]:
                    break
            except (requests.ConnectionError, requests.Timeout, KeyError, TypeError, ValueError):
                pass
            assert time.time() < deadline, "the UI never came up"
            time.sleep(1)
        SHOTS.mkdir(parents=True, exist_ok=True)
        os.environ["_CNN_UI_TEST_LAKE"] = str(tmp / "lake")  # for the assertions below
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=5)  # a temporary instance: no graceful shutdown to wait 15 s for
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


@pytest.fixture(scope="module")
def page(ui):
    _need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        pg = browser.new_page(viewport={"width": 1600, "height": 1000})
        pg.set_default_timeout(60_000)
        yield pg
        browser.close()


def _open(page, url: str, path: str) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(url + path, wait_until="networkidle")
    if getattr(page, "_cnn_dialog_done", False):
        return  # dismissed once: Dagster remembers it for this browser, so no 4 s wait on every page
    skip = page.get_by_role("button", name="Skip")  # the first visit's community dialog opens a moment late
    try:
        skip.first.wait_for(state="visible", timeout=4000)
        skip.first.click()
        page._cnn_dialog_done = True
    except PlaywrightTimeout:
        pass  # not shown (yet): look again on the next page


def test_dagster_dev_serves_the_ui_and_lists_the_assets(ui):
    assets = {"/".join(n["assetKey"]["path"]) for n in _graphql(ui, "{ assetNodes { assetKey { path } } }")["data"]["assetNodes"]}
    assert {"raw_prices", "indicator_panel", "cnn_model", "backtest", "mnist", "lenet5_mnist"} <= assets
    home = requests.get(ui, timeout=10)
    assert home.status_code == 200 and "<html" in home.text.lower()


def test_asset_graph_and_job_runs(ui, page):
    _open(page, ui, "/asset-groups")
    page.get_by_text("trading", exact=True).first.wait_for()
    page.get_by_text("fetching statuses").first.wait_for(state="detached")
    page.screenshot(path=SHOTS / "01_asset_graph.png")
    # runs launched through the code location are the job's runs (before: "No runs found")
    _open(page, ui, "/locations/cnn_pipelines/jobs/trading_job/runs")
    page.get_by_text("Success").first.wait_for()
    page.screenshot(path=SHOTS / "02_trading_job_runs.png")
    assert page.get_by_text("No runs found").count() == 0
    _open(page, ui, "/overview/activity/timeline")
    page.screenshot(path=SHOTS / "02b_overview_timeline.png")


def test_partition_metadata_is_the_partitions_own(ui, page):
    _open(page, ui, "/assets/raw_prices?view=partitions")
    page.get_by_placeholder("Filter by name").fill("2021-06-15")  # the list shows the newest partitions only
    page.get_by_text("2021-06-15", exact=True).first.click()
    page.get_by_text("Metadata", exact=True).first.wait_for()
    page.wait_for_timeout(1000)
    page.screenshot(path=SHOTS / "03_raw_prices_partition.png")
    from cnn_pipelines.storage import lake

    rows = page.locator("tr", has_text="rows").first.inner_text().split()
    that_day = len(lake.read_partitions(Path(os.environ["_CNN_UI_TEST_LAKE"]), "raw_prices", ["2021-06-15"]))
    assert rows == ["rows", str(that_day)]  # the day's rows, not the run's total (run_rows sits on 2021-06-30)


def test_picture_in_asset_metadata(ui, page):
    _open(page, ui, "/assets/universe")  # latest materialization = the run's newest partition, with the plot
    row = page.locator("tr", has_text="turnover").filter(has_text="Show Markdown").first
    row.get_by_text("Show Markdown").click()
    img = page.locator("img[src^='data:image/']").first
    img.wait_for()
    page.wait_for_timeout(500)
    page.screenshot(path=SHOTS / "04_universe_turnover_plot.png")
    assert img.evaluate("i => i.naturalWidth") >= 800  # readable on a 1600 px screen
    body = page.locator("body").inner_text()  # a share shows in %, its unit in its key
    assert "turnover_pct_per_day" in body and not re.findall(r"\d\.\d{5,}", body)


def test_the_study_view_shows_the_study_inline_and_says_what_is_not_built(ui, page):
    """Issue 31: one place shows the study as it stands; its numbers are metadata values shown inline (rounded,
    never nan), and what is missing says which job builds it, without a click."""
    _open(page, ui, "/assets/study_report")
    page.get_by_text("price_range", exact=True).first.wait_for()
    page.wait_for_timeout(1000)
    page.screenshot(path=SHOTS / "04b_study_report.png", full_page=True)
    body = page.locator("body").inner_text()
    assert "no out-of-sample predictions yet" in body and "run research_job" in body and "run evaluation_job" in body
    assert "universe_members_per_day" in body and " nan" not in body.lower() and "None" not in body
    assert not re.findall(r"\d\.\d{5,}", body)  # every number rounded to what it means


def test_launch_one_partition_from_the_ui(ui, page):
    before = {r["runId"] for r in _runs(ui)}
    _open(page, ui, "/assets/raw_prices?view=partitions")
    page.get_by_placeholder("Filter by name").fill(LAUNCHED)
    page.get_by_text(LAUNCHED, exact=True).first.click()
    page.get_by_role("button", name="Materialize…").first.click()
    launch = page.get_by_role("button", name="Launch 1 run")
    launch.wait_for()
    page.screenshot(path=SHOTS / "05_launch_dialog.png")
    launch.click()
    deadline, new = time.time() + 300, []
    while time.time() < deadline:
        new = [r for r in _runs(ui) if r["runId"] not in before]
        if new and new[0]["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(2)
    assert new, "no run was launched from the UI"
    run = new[0]
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert tags.get("dagster/partition") == LAUNCHED
    _open(page, ui, f"/runs/{run['runId']}")
    page.screenshot(path=SHOTS / "06_launched_run.png")
    assert run["status"] == "SUCCESS", run
