"""`tune_gc`: start-up objects are frozen out of collection and young collections are rare,
while cyclic garbage made afterwards is still collected."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from crossbook.gc_policy import GC_THRESHOLDS, tune_gc, watch_pauses


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.mark.usefixtures("restored_gc")
def test_start_up_objects_are_frozen_and_cycles_still_go() -> None:
    long_lived = [Node() for _ in range(100)]
    tune_gc()
    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_freeze_count() >= len(long_lived)
    first, second = Node(), Node()
    first.other, second.other = second, first
    gone = weakref.ref(first)
    del first, second
    gc.collect()
    assert gone() is None


def test_watch_pauses_reports_each_collection_until_stopped() -> None:
    seen: list[tuple[int, int, int]] = []
    stop = watch_pauses(lambda generation, start, end: seen.append((generation, start, end)))
    try:
        gc.collect(1)
        gc.collect()
    finally:
        stop()
    assert [generation for generation, _, _ in seen] == [1, 2]
    assert all(start <= end for _, start, end in seen)
    gc.collect()
    assert len(seen) == 2
