"""Contract suites every backend implementation must pass."""
