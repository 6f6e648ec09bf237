"""The HTTP API: a FastAPI app over the stores, the registry and the engine, and the ``forgeline server`` process."""
