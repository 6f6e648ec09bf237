"""bulk_imports: the cyclic GC is paused during a burst of imports and restored; only a process's first burst freezes."""

from __future__ import annotations

import gc

from forgeline import startup
from forgeline.startup import bulk_imports


def test_the_gc_is_paused_during_a_burst_and_left_as_it_was(monkeypatch):
    monkeypatch.setattr(startup, "_frozen", True)  # freezing is the next test's business
    assert gc.isenabled()
    with bulk_imports():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with bulk_imports():
            pass
        assert not gc.isenabled()  # a caller that runs without the GC keeps it off
    finally:
        gc.enable()


def test_only_the_first_burst_of_a_process_freezes_what_exists(monkeypatch):
    monkeypatch.setattr(startup, "_frozen", False)
    gc.unfreeze()
    try:
        with bulk_imports():
            made = [[] for _ in range(10)]
        assert gc.get_freeze_count() > len(made)
        gc.unfreeze()
        with bulk_imports():
            pass
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()
