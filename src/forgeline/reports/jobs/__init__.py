"""Scripts forgeline runs as jobs for its report steps (each in a folder of its own: nothing here shadows a module)."""
