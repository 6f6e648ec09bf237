"""Where a job runs, behind one Executor protocol: local processes today (LocalExecutor)."""
