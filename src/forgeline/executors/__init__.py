"""Where a job runs: local processes or a Ray cluster, behind one Executor protocol."""
