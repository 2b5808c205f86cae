"""The garbage-collector policy of crossbook's long-running processes (node, gateway workers,
the history projector).

A node holds hundreds of thousands of long-lived objects (resting orders, views, books) and
allocates a few short-lived ones per command; with CPython's default thresholds the
collector rescans survivors over and over (about 15% of the sequencer benchmark's time,
pauses of 100 ms and more in the oldest generation). Frozen start-up objects are never
scanned again; young objects mostly die before a collection sees them. Cyclic garbage is
still collected, just in larger, rarer steps. `watch_pauses` reports each collection's pause
(a node counts them in `/metrics`, so a latency tail can be checked against them).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Final

PauseObserver = Callable[[int, int, int], None]
"""Called after each collection with (generation, start, end), `time.perf_counter_ns`."""

GC_THRESHOLDS: Final = (100_000, 50, 100)
"""Young-generation collections every 100,000 net container allocations instead of 700."""


def use_thresholds() -> None:
    """Collect rarely from now on (what a process does before a long start-up or load)."""
    gc.set_threshold(*GC_THRESHOLDS)


def tune_gc() -> None:
    """Collect once, freeze what start-up built, and collect the young generation rarely."""
    gc.collect()
    gc.freeze()
    use_thresholds()


def watch_pauses(observer: PauseObserver) -> Callable[[], None]:
    """Call `observer` after every collection of this process (`gc.callbacks`); returns the
    function that stops it."""
    started = 0
    clock = time.perf_counter_ns

    def callback(phase: str, info: dict[str, int]) -> None:
        nonlocal started
        if phase == "start":
            started = clock()
        else:
            observer(info["generation"], started, clock())

    gc.callbacks.append(callback)

    def stop() -> None:
        if callback in gc.callbacks:
            gc.callbacks.remove(callback)

    return stop
