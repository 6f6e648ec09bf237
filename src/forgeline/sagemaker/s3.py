"""S3 locations mapped to local folders: ``s3://my-bucket/prefix`` → ``./data`` (longest prefix wins)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from forgeline.errors import PipelineDefinitionError


@dataclass(frozen=True)
class S3Map:
    """Prefixes of ``s3://`` URIs and the absolute local folders they stand for."""

    roots: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, mapping: Mapping[str, str], base: str = ".") -> S3Map:
        """Check the prefixes and make the folders absolute (relative ones are relative to ``base``)."""
        roots: dict[str, str] = {}
        for prefix, folder in mapping.items():
            if not isinstance(prefix, str) or not prefix.startswith("s3://") or len(prefix.rstrip("/")) <= 5:
                raise PipelineDefinitionError(
                    f"S3 root {prefix!r} must be an s3:// prefix with a bucket, e.g. s3://my-bucket=./data"
                )
            if not isinstance(folder, str) or not folder:
                raise PipelineDefinitionError(f"S3 root {prefix!r} needs a local folder")
            roots[prefix.rstrip("/")] = os.path.abspath(os.path.join(base, os.path.expanduser(folder)))
        return cls(roots)

    def local(self, uri: str) -> str | None:
        """The local path of ``uri``, or None when no prefix covers it."""
        for prefix in sorted(self.roots, key=len, reverse=True):
            if uri == prefix or uri.startswith(prefix + "/"):
                rest = uri[len(prefix):].lstrip("/")
                return os.path.join(self.roots[prefix], rest) if rest else self.roots[prefix]
        return None

    def map(self, uri: str) -> str:
        """``uri`` as a local path when a prefix covers it, else unchanged (read from S3 itself)."""
        return self.local(uri) or uri
