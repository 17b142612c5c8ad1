"""Metadata attached to an asset's materialization only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg


def asset_output(context: dg.AssetExecutionContext, value: Any, metadata: Mapping[str, Any] | None) -> dg.Output:
    """``value`` as the step's output with ``metadata`` on the asset's materialization.

    Metadata given to ``dg.Output`` is stored twice, in the step-output event and in the materialization; a
    period's pictures would double the instance's history for nothing. Asset metadata is stored once."""
    if metadata:
        context.add_asset_metadata(dict(metadata))
    return dg.Output(value)


def asset_result(context: dg.AssetExecutionContext, metadata: Mapping[str, Any]) -> dg.MaterializeResult:
    """A materialization whose ``metadata`` is stored once (see ``asset_output``)."""
    context.add_asset_metadata(dict(metadata))
    return dg.MaterializeResult()
