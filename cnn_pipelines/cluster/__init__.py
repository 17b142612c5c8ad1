"""Past one machine: the servers a Dagster deployment is built from, started on this machine for tests and
small clusters (``servers``), and the configuration that points the project at them (``deploy/cluster``)."""

# Runs that train a network carry this tag: a cluster's run coordinator limits how many run at once
# (deploy/cluster/dagster.yaml, tag_concurrency_limits), since each fills a worker's cores.
TRAINS = {"cnn/trains": "true"}
