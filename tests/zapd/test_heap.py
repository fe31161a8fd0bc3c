"""zapd freezes its start-up heap: full collections no longer walk it (`settle_heap`)."""

from __future__ import annotations

import gc

from zapd.daemon import GC_YOUNG, settle_heap


def test_settle_heap_takes_what_is_alive_out_of_the_collector_and_keeps_it() -> None:
    kept = {"alive": [1, 2, 3]}
    kept["self"] = kept  # a cycle: frozen, it is never collected (nor scanned)
    before = gc.get_threshold()
    try:
        assert settle_heap() == before
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (GC_YOUNG, before[1], before[2])  # fewer young scans
        gc.collect()
        assert kept["self"] is kept and kept["alive"] == [1, 2, 3]
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
