"""Whether a plan's runs can read what they need: asked of the assets' own partition mappings.

Each run of a plan materializes a job's assets for a range of partitions. Each of those assets loads its
parents' partitions through the same ``PartitionMapping`` objects that the IO manager is handed at run time;
here they are asked, in the plan's order, which parent partitions each run will read, and whether the lake
already holds them or an earlier run (or the same run, upstream) builds them. A plan with an unmet input is
refused before any run starts.
"""

from __future__ import annotations

import dagster as dg


def unmet_inputs(runs: list[tuple[str, str, str]], defs: dg.Definitions,
                 have: dict[str, set[str]] | None = None) -> list[str]:
    """One line per (run, asset, parent) whose parent partitions neither the lake (``have``: table -> keys)
    nor an earlier run of ``runs`` holds. Look-ahead tails (mappings that read past the run's last
    partition) are optional: labels there are unrealized until the bars land."""
    graph = defs.resolve_asset_graph()
    held = {table: set(keys) for table, keys in (have or {}).items()}
    problems = []
    for job, lo, hi in runs:
        if not lo:
            continue  # unpartitioned jobs read whatever is materialized
        job_def = defs.resolve_job_def(job)
        keys = job_def.partitions_def.get_partition_keys_in_range(dg.PartitionKeyRange(lo, hi))
        assets = sorted(job_def.asset_layer.executable_asset_keys, key=lambda k: k.to_user_string())
        built = {a.to_user_string() for a in assets}
        for asset in assets:
            node = graph.get(asset)
            for parent in sorted(node.parent_keys, key=lambda k: k.to_user_string()):
                if parent == asset:
                    continue  # a research month's warm-start source: the plan's chain begins at its first month
                parent_def = graph.get(parent).partitions_def
                if parent_def is None or node.partitions_def is None:
                    continue
                mapping = graph.get_partition_mapping(asset, parent)
                mapped = mapping.get_upstream_mapped_partitions_result_for_partitions(
                    node.partitions_def.subset_with_partition_keys(keys), node.partitions_def, parent_def)
                need = sorted(mapped.partitions_subset.get_partition_keys())
                if getattr(mapping, "end_offset", 0) > 0 and parent_def == node.partitions_def:
                    need = [k for k in need if k <= keys[-1]]  # the look-ahead tail may be absent
                name = parent.to_user_string()
                available = held.get(name, set()) | (set(keys) if name in built else set())
                missing = [k for k in need if k not in available]
                if missing:
                    problems.append(f"{job} {lo}..{hi}: {asset.to_user_string()} reads {name} {missing[0]}.."
                                    f"{missing[-1]} ({len(missing)} partitions) that neither the lake nor an "
                                    f"earlier run of the plan holds")
        for asset in assets:
            held.setdefault(asset.to_user_string(), set()).update(keys)
    return problems
