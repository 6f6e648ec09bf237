"""Content digest of a pipeline definition: equal documents get equal digests, whatever their key order."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def compute_definition_digest(definition: dict[str, Any]) -> str:
    """Hex sha256 of the definition's canonical JSON (sorted keys, compact separators)."""
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
