"""`dagster dev -w workspace.yaml` serves the UI on 127.0.0.1 and lists the project's assets."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from cnn_pipelines_tests.conftest import REPO_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dagster_dev_serves_ui_and_lists_assets(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    env = dict(os.environ, DAGSTER_HOME=str(home), CNN_LAKE_ROOT=str(tmp_path / "lake"))
    dagster = str(Path(sys.executable).with_name("dagster"))
    proc = subprocess.Popen([dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
                            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        query = {"query": "{ assetNodes { assetKey { path } } }"}
        deadline, assets = time.time() + 180, set()
        while time.time() < deadline and "raw_prices" not in assets:
            assert proc.poll() is None, "dagster dev exited early"
            try:
                data = requests.post(f"{url}/graphql", json=query, timeout=10).json()
                assets = {"/".join(n["assetKey"]["path"]) for n in data["data"]["assetNodes"]}
            except (requests.ConnectionError, requests.Timeout, KeyError, TypeError, ValueError):
                time.sleep(1)
        assert "raw_prices" in assets, "the UI never listed raw_prices"
        page = requests.get(url, timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # stop it (and its code-server children) by its PID
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode is not None
