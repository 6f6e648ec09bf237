"""forgeline: self-hosted ML pipelines that run locally in milliseconds per step."""

__version__ = "0.1.0"
