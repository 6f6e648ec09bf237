"""Imports in bulk at start-up: the cyclic garbage collector paused while they run, what they made frozen once.

An import burst (the engine, the stores and SQLAlchemy behind them) makes tens of thousands of objects that live
as long as the process. A collection in the middle of it finds nothing to free but rescans everything made so far
(about a sixth of the burst's time), and every later full collection, the process's exit included, would scan
them all again.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_frozen = False


@contextmanager
def bulk_imports() -> Iterator[None]:
    """Run a burst of imports with the cyclic GC paused; the first burst of a process then freezes what exists.

    Frozen objects (``gc.freeze``) are left out of every later collection and are still freed when their last
    reference goes. Only the first burst freezes, so a process that starts many executions keeps out of the
    collections no more than what was alive at its first start. The GC is enabled again only if it was.
    """
    global _frozen
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if not _frozen:
            _frozen = True
            gc.freeze()
        if enabled:
            gc.enable()
