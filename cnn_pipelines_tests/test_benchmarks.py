"""The benchmark scripts run end to end at toy sizes and end with the JSON line the README and issue promise.

Toy sizes say nothing about speed (that is what the scripts are for at full size); these tests keep the scripts
runnable and their reported figures well-formed, and check that the Winograd layer computes the same function.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import math
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest

from cnn_pipelines_tests.conftest import REPO_ROOT


# Scripts that measure the process itself (peak memory) run in a process of their own; the others run in the test
# process, as `python benchmarks/<script>` would run them, without importing TensorFlow again for each (5-8 s each).
OWN_PROCESS = {"features.py", "scale.py"}


def run_benchmark(script: str, *args: str) -> dict:
    """Run benchmarks/<script> with ``args`` and parse the JSON object on its last stdout line."""
    path = REPO_ROOT / "benchmarks" / script
    if script in OWN_PROCESS:
        proc = subprocess.run([sys.executable, str(path), *args], cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out = proc.stdout
    else:
        spec = importlib.util.spec_from_file_location(f"benchmark_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        buf = io.StringIO()
        with mock.patch.object(sys, "argv", [str(path), *args]), contextlib.redirect_stdout(buf):
            spec.loader.exec_module(module)
            module.main()
        out = buf.getvalue()
    return json.loads(out.strip().splitlines()[-1])


def positive(x: float) -> bool:
    return math.isfinite(x) and x > 0


@pytest.mark.timeout(300)
def test_training_benchmark_reports_throughput_of_both_loops() -> None:
    r = run_benchmark("training.py", "--train", "3000", "--val", "1000", "--epochs", "1")
    assert positive(r["samples_per_s"]) and positive(r["reference_samples_per_s"])
    assert r["ratio"] == pytest.approx(r["samples_per_s"] / r["reference_samples_per_s"], abs=0.01)
    assert r["flops_per_sample"] == 6_716_448
    assert 0 < r["peak_fraction"] < 1.5 and math.isfinite(r["val_ic"]) and math.isfinite(r["reference_val_ic"])


@pytest.mark.timeout(300)
def test_selection_benchmark_reports_speed_and_agreement() -> None:
    r = run_benchmark("selection.py", "--rows", "3000")
    assert positive(r["ratio"])
    assert -1 <= r["rank_correlation"] <= 1 and 0 <= r["top15_overlap"] <= 15


@pytest.mark.timeout(300)
def test_features_benchmark_reports_both_ratios_and_memory() -> None:
    r = run_benchmark("features.py", "--tickers", "4", "--days", "400", "--scale-tickers", "4")
    assert positive(r["ratio_technical"]) and positive(r["ratio_betas"]) and positive(r["peak_rss_gb"])
    assert r["rows"] > 0


@pytest.mark.timeout(300)
def test_winograd_layer_matches_the_direct_convolution() -> None:
    r = run_benchmark("winograd.py", "--batch", "8")
    assert r["max_abs_diff"] < 1e-4 and r["max_rel_grad_diff"] < 1e-4
    assert r["multiplication_ratio"] == 2.58 and positive(r["ratio"])


@pytest.mark.timeout(300)
def test_vision_benchmark_reports_both_pipelines_on_the_same_network():
    r = run_benchmark("vision.py", "--dataset", "mnist", "--train", "256", "--test", "128", "--epochs", "1",
                      "--width", "0.1")
    assert positive(r["images_per_s"]) and positive(r["reference_images_per_s"])
    assert r["ratio"] == pytest.approx(r["images_per_s"] / r["reference_images_per_s"], abs=0.01)
    assert 0 <= r["accuracy"] <= 1 and 0 <= r["reference_accuracy"] <= 1 and r["train"] == 256


@pytest.mark.timeout(300)
def test_ingest_benchmark_compares_both_date_layouts_with_a_plain_read() -> None:
    r = run_benchmark("ingest.py", "--tickers", "6", "--days", "300")
    for layout in ("iso", "us_time"):
        assert r[f"{layout}_rows"] == 1800 and positive(r[f"{layout}_ratio"])
        assert r[f"{layout}_kept_rows"] == r["iso_kept_rows"] > 0  # both layouts keep the same quarter
    assert r["store_kept_rows"] == r["iso_kept_rows"]  # the same bars as one HDF5 store, read by range
    for key in ("store_range_ratio", "store_summary_ratio", "folder_summary_ratio"):
        assert positive(r[key])
    assert isinstance(r["goal_met"], bool)


@pytest.mark.timeout(300)
def test_lake_benchmark_compares_layouts_on_the_same_rows() -> None:
    r = run_benchmark("lake.py", "--names", "8", "--years", "1", "--columns", "12")
    assert r["rows"] == 8 * 261 and r["files"] == 12  # one file per calendar month (2015 has 261 weekdays)
    for key in ("whole_table_ratio", "one_month_ratio", "disk_ratio", "daily_disk_ratio"):
        assert positive(r[key])
    assert isinstance(r["goal_met"], bool)


@pytest.mark.timeout(600)
def test_walkforward_benchmark_reports_the_ratio_ics_and_levers() -> None:
    r = run_benchmark("walkforward.py", "--names", "30", "--train-months", "6", "--val-months", "2", "--periods", "2",
                      "--epochs", "2", "--cadence", "2", "--seeds", "2")
    assert positive(r["ratio"]) and positive(r["reference_seconds"]) and positive(r["seconds"])
    assert r["ratio"] == pytest.approx(r["reference_seconds"] / r["seconds"], rel=0.05)
    assert r["total_seconds"] > r["reference_seconds"] + r["seconds"]  # the whole run, market and cadence included
    assert r["periods"] == 2 and r["reference_epochs_trained"] == 4 and 0 < r["epochs_trained"] <= 4
    assert all(math.isfinite(r[k]) for k in ("ic", "reference_ic", "ic_se", "cadence_ic"))
    assert {"training_loop", "warm_start_early_stop", "cadence_over_ours"} <= set(r["levers"])
    assert r["seeds"] == 2 and len(r["ic_by_seed"]) == 2 and r["ic_by_seed"][0] == r["ic"]  # the script's default: 3
    assert r["ic_seed_spread"] == pytest.approx(float(np.std(r["ic_by_seed"], ddof=1)), abs=1e-3)


@pytest.mark.timeout(600)
def test_full_month_benchmark_reports_before_and_after_per_month() -> None:
    r = run_benchmark("full_month.py", "--names", "30", "--train-months", "6", "--epochs", "3", "--measure-epochs", "1")
    assert positive(r["book_seconds_per_epoch"]) and positive(r["ours_seconds_per_epoch"]) and r["training_images"] > 0
    assert r["before_seconds_per_month"] == pytest.approx(r["fit_seconds"] + 3 * r["book_seconds_per_epoch"], abs=1)
    assert r["after_steady_month_seconds"] <= r["after_first_month_seconds"]


@pytest.mark.timeout(300)
def test_scale_benchmark_reports_the_sharded_panels_memory_and_a_walk_forward_projection(tmp_path) -> None:
    """Issue 30: peak memory of the sharded panel against today's whole-universe way, the stored values of both
    compared, and the projection of a 120-month study from a month's measured costs and the warm-start chains
    (here read from a full_month.py line: 30 s fitting, 100 s an epoch)."""
    month = tmp_path / "full_month.json"
    month.write_text('month measured\n{"fit_seconds": 30.0, "ours_seconds_per_epoch": 100.0, "training_images": 9}\n')
    r = run_benchmark("scale.py", "--tickers", "60", "--days", "120", "--shard", "25", "--reference-tickers", "20,40",
                      "--month-json", str(month), "--workers", "1,4,16", "--chains", "1,4")
    assert r["tickers"] == 60 and r["identical_sharded"] is True and r["identical"] is None and r["panel_rows"] > 0
    assert positive(r["peak_rss_gb"]) and positive(r["reference_peak_rss_gb"]) and set(r["reference_measured"]) == {"20", "40"}
    first, warm = 30 + 30 * 100, 30 + 4 * 100  # a month from scratch (30 epochs), a warm-started one (4)
    hours = r["projected_hours"]
    assert hours["chains_1"] == {w: round((first + 119 * warm) / 3600, 2) for w in ("1", "4", "16")}  # one chain
    assert hours["chains_4"]["4"] == hours["chains_4"]["16"] == round((first + 29 * warm) / 3600, 2)
    assert hours["chains_4"]["1"] == round(4 * (first + 29 * warm) / 3600, 2)
    assert hours["from_scratch"]["16"] == round(8 * first / 3600, 2)


@pytest.mark.timeout(300)
def test_transfer_benchmark_reports_the_learning_curve_of_three_methods() -> None:
    """Issue 32: one JSON line with the curve's label budgets, the three methods' mean accuracies (with spread)
    and transfer's advantage at 50 and 100 labels, here at toy sizes (one seed, one backbone epoch)."""
    from cnn_pipelines.vision.settings import DEBIAN_FASHION_MNIST

    if not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("needs Debian's dataset-fashion-mnist (.ci/run installs it)")
    r = run_benchmark("transfer.py", "--labels", "50,100", "--seeds", "1", "--backbone-epochs", "1",
                      "--min-steps", "5")
    assert r["labels"] == [50, 100] and r["seeds"] == 1
    for method in ("transfer", "fine_tuned", "scratch"):
        assert len(r[method]) == 2 and all(0 < a <= 100 for a in r[method]), (method, r[method])
    assert r["advantage_50"] == pytest.approx(r["transfer"][0] - r["scratch"][0], abs=0.02)
    assert r["advantage_100"] == pytest.approx(r["transfer"][1] - r["scratch"][1], abs=0.02)
    assert 50 < r["source_accuracy"] <= 100


@pytest.mark.timeout(300)
@pytest.mark.parametrize("pair", ["coarse", "digits"])
def test_transfer_benchmark_measures_the_other_pairs(pair: str) -> None:
    """The two other kinds of transfer docs/vision.md reports (coarse labels to fine ones, MNIST to 8x8 digits)
    run from the same script, at toy sizes."""
    from cnn_pipelines.vision.settings import DEBIAN_FASHION_MNIST

    if pair == "coarse" and not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("needs Debian's dataset-fashion-mnist (.ci/run installs it)")
    r = run_benchmark("transfer.py", "--pair", pair, "--labels", "50", "--seeds", "1", "--backbone-epochs", "1",
                      "--min-steps", "5")
    assert r["pair"] == pair and r["labels"] == [50] and all(0 < r[m][0] <= 100 for m in ("transfer", "scratch"))
    assert 50 < r["source_accuracy"] <= 100  # four coarse classes or ten digits, learned in one epoch

