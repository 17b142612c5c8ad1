"""The project's lean event-log storage on PostgreSQL (``dagster-postgres``), for an instance that several
machines share: the same planned-once ranges, check rows and no copied latest materialization as the SQLite class
(``storage/events.py`` says why), on Dagster's Postgres storage.

Selected by ``deploy/cluster/dagster.yaml``. Use a ``postgresql+psycopg2://`` URL: SQLAlchemy 2.1 maps a bare
``postgresql://`` to psycopg 3, which dagster-postgres does not install.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

from cnn_pipelines.storage.events import LeanEventLogMixin


class LeanPostgresEventLogStorage(LeanEventLogMixin, PostgresEventLogStorage):
    """Dagster's Postgres event storage, kept lean."""

    @classmethod
    def from_config_value(cls, inst_data, config_value: Mapping[str, Any]) -> LeanPostgresEventLogStorage:
        # PostgresEventLogStorage.from_config_value builds its own class by name: without this, dagster.yaml
        # would silently get the stock storage.
        return cls(inst_data=inst_data, postgres_url=pg_url_from_config(config_value),
                   should_autocreate_tables=config_value.get("should_autocreate_tables", True),
                   token_provider=get_token_provider_from_config(config_value))
