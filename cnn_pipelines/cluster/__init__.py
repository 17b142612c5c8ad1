"""Past one machine: the servers a Dagster deployment is built from, started on this machine for tests and
small clusters (``servers``), and the configuration that points the project at them (``deploy/cluster``)."""
