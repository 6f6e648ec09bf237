"""Storage: the metadata store (SQL) and the artifact store (fsspec)."""
