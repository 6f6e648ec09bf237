"""Alarms: typed events (executions, steps, the model registry, triggers, metric conditions) sent to webhooks,
email and commands by the server's dispatcher, every delivery recorded."""
