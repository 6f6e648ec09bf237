"""Where a job runs, behind one Executor protocol (executors/base.py); LocalExecutor runs jobs on this machine."""
