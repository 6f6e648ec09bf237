"""Scripts forgeline runs as jobs of its own (kept in a folder of their own, so their directory on sys.path
shadows nothing in user code)."""
