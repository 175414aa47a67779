"""The heap once started (``_lifetime.settle_heap``): start-up's objects frozen out of the
collector's way, full collections a tenth as often, young ones as before."""

from __future__ import annotations

import gc

from syncstream._lifetime import FULL_COLLECTION_THRESHOLD, settle_heap


def test_settle_heap_freezes_start_up_and_spaces_full_collections() -> None:
    before = gc.get_threshold()
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        young, middle, full = gc.get_threshold()
        assert (young, middle) == before[:2]
        assert full == FULL_COLLECTION_THRESHOLD > before[2]
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
