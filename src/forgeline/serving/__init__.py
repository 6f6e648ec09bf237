"""Real-time endpoints: registered models behind one HTTP API, with variants, swaps and micro-batching.

``from forgeline.serving import Endpoint``; the server itself is ``forgeline serve``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Endpoint", "InvocationResult"]


def __getattr__(name: str) -> Any:
    # Lazy: worker processes import this package and must not pay for the metadata store's imports.
    if name in __all__:
        from forgeline.serving import endpoint

        return getattr(endpoint, name)
    raise AttributeError(f"module 'forgeline.serving' has no attribute {name!r}")
