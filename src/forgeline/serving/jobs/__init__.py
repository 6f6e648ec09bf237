"""Scripts forgeline runs as jobs for its serving steps (in a folder of their own: nothing here shadows a module)."""
