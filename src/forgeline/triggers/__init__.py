"""Schedules and file-arrival triggers: server duties that start executions of stored pipelines by themselves."""
