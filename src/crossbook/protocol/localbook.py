"""A client's local copy of an order book, kept in sync from a snapshot plus depth diffs.

This is the documented Binance procedure, as a pure state machine (no I/O; the caller opens
the stream and fetches snapshots):

1. Before a snapshot is applied, every diff is buffered (`BUFFERED`); the buffer keeps the
   newest `max_buffer` diffs.
2. `apply_snapshot(last_update_id, ...)`: if the oldest buffered diff starts after
   `last_update_id + 1` the snapshot is too old (`STALE`: fetch another, keep buffering).
   Otherwise the book becomes the snapshot and the buffer is replayed through step 3.
3. A diff `U..u` is dropped when `u <= last_update_id` (`DROPPED`). The first diff applied
   after a snapshot must satisfy `U <= last_update_id + 1 <= u`; every later one must have
   `U == previous u + 1`. Levels are absolute: a qty equal to 0 removes the price.
4. Any other diff is a gap (`GAP`): the book is discarded, the diff starts a new buffer,
   and the caller fetches a fresh snapshot (step 2).

Prices may be any hashable, ordered type (integer ticks, `Decimal`), quantities anything
comparable with 0. Reading `bids()`/`asks()` sorts, O(n log n); updates are O(1) per level.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from enum import Enum
from typing import Any, Generic, NamedTuple, Protocol, TypeVar


class _Price(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...
    def __hash__(self) -> int: ...


P = TypeVar("P", bound=_Price)
Q = TypeVar("Q")


class DiffResult(Enum):
    BUFFERED = "buffered"
    """No snapshot applied yet: kept for replay."""
    DROPPED = "dropped"
    """Older than the book: ignored."""
    APPLIED = "applied"
    GAP = "gap"
    """Not contiguous: the book is discarded; fetch a snapshot."""


class SnapshotResult(Enum):
    SYNCED = "synced"
    STALE = "stale"
    """Older than the buffered diffs: fetch a newer snapshot."""
    GAP = "gap"
    """The buffered diffs have a hole after the snapshot: fetch a new snapshot."""


class _Diff(NamedTuple, Generic[P, Q]):
    first: int
    last: int
    bids: list[tuple[P, Q]]
    asks: list[tuple[P, Q]]


class LocalBook(Generic[P, Q]):
    def __init__(self, max_buffer: int = 10_000) -> None:
        self._buffer: deque[_Diff[P, Q]] = deque(maxlen=max_buffer)
        self._bids: dict[P, Q] = {}
        self._asks: dict[P, Q] = {}
        self._synced = False
        self._applied_since_snapshot = False
        self.last_update_id = -1
        """The id the book reflects; -1 until a snapshot is applied."""

    @property
    def synced(self) -> bool:
        return self._synced

    def on_diff(
        self,
        first_update_id: int,
        last_update_id: int,
        bids: Iterable[tuple[P, Q]],
        asks: Iterable[tuple[P, Q]],
    ) -> DiffResult:
        diff = _Diff(first_update_id, last_update_id, list(bids), list(asks))
        if not self._synced:
            self._buffer.append(diff)
            return DiffResult.BUFFERED
        return self._apply(diff)

    def apply_snapshot(
        self,
        last_update_id: int,
        bids: Iterable[tuple[P, Q]],
        asks: Iterable[tuple[P, Q]],
    ) -> SnapshotResult:
        if self._buffer and self._buffer[0].first > last_update_id + 1:
            return SnapshotResult.STALE
        self._bids = {price: qty for price, qty in bids if qty != 0}
        self._asks = {price: qty for price, qty in asks if qty != 0}
        self.last_update_id = last_update_id
        self._synced = True
        self._applied_since_snapshot = False
        pending, self._buffer = self._buffer, deque(maxlen=self._buffer.maxlen)
        for index, diff in enumerate(pending):
            if self._apply(diff) is DiffResult.GAP:
                # The diff that broke the chain is now buffered; so must be the ones after it.
                self._buffer.extend(list(pending)[index + 1 :])
                return SnapshotResult.GAP
        return SnapshotResult.SYNCED

    def _apply(self, diff: _Diff[P, Q]) -> DiffResult:
        if diff.last <= self.last_update_id:
            return DiffResult.DROPPED
        expected = self.last_update_id + 1
        contiguous = (
            diff.first == expected
            if self._applied_since_snapshot
            else diff.first <= expected <= diff.last
        )
        if not contiguous:
            self._synced = False
            self._bids, self._asks = {}, {}
            self.last_update_id = -1
            self._buffer.clear()
            self._buffer.append(diff)
            return DiffResult.GAP
        for side, levels in ((self._bids, diff.bids), (self._asks, diff.asks)):
            for price, qty in levels:
                if qty == 0:
                    side.pop(price, None)
                else:
                    side[price] = qty
        self.last_update_id = diff.last
        self._applied_since_snapshot = True
        return DiffResult.APPLIED

    def bids(self, limit: int | None = None) -> list[tuple[P, Q]]:
        """Best (highest) first."""
        return sorted(self._bids.items(), key=lambda level: level[0], reverse=True)[:limit]

    def asks(self, limit: int | None = None) -> list[tuple[P, Q]]:
        """Best (lowest) first."""
        return sorted(self._asks.items(), key=lambda level: level[0])[:limit]
