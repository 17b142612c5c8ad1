"""The project settings file, ``cnn_pipelines.yaml`` in the repository root (or the file $CNN_SETTINGS names).

One place for the price source, its files, the exchange, the preset, the partitions start and the research
settings, read the same way by the web UI, the CLI, the nightly schedule and the tests. Each key has an
environment variable, ``CNN_`` + the key in capitals, that overrides it for one command.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

SETTINGS_FILE = "cnn_pipelines.yaml"
REPO_ROOT = Path(__file__).resolve().parents[1]
KEYS = (
    "price_source", "price_files", "tickers", "exchange", "date_order", "non_tradables", "strict_ingestion",
    "preset", "partitions_start", "factors_csv", "lake_root", "panel_shard", "panel_workers", "target", "warm_start", "retrain_every",
    "warm_chains", "seeds",
    "synthetic_seed", "synthetic_tickers", "synthetic_signal", "fashion_mnist_dir",
)


class SettingsFileError(ValueError):
    """The settings file cannot be read, or names a key the project does not have."""


def settings_path(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env["CNN_SETTINGS"]) if env.get("CNN_SETTINGS") else REPO_ROOT / SETTINGS_FILE


def _text(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def file_settings(path: Path) -> dict[str, str]:
    """The file's settings as ``CNN_*`` variables (lists comma-joined); empty values are left out."""
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SettingsFileError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise SettingsFileError(f"{path}: expected 'key: value' lines, got {type(data).__name__}")
    unknown = sorted(set(map(str, data)) - set(KEYS))
    if unknown:
        raise SettingsFileError(f"{path}: unknown setting(s) {unknown}; known: {', '.join(KEYS)}")
    return {f"CNN_{k.upper()}": _text(v) for k, v in data.items() if v is not None and v != "" and v != []}


def project_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The settings in force: the settings file, overridden by ``CNN_*`` environment variables."""
    env = dict(os.environ if env is None else env)
    merged = file_settings(settings_path(env))
    merged.update({k: v for k, v in env.items() if k.startswith("CNN_") and v.strip()})  # empty: not set
    return {**{k: v for k, v in env.items() if not k.startswith("CNN_")}, **merged}
