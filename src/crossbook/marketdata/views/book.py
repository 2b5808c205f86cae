"""The L2 book of one symbol, rebuilt from `DepthChanged` events.

Contract: levels are the aggregated visible totals the engine reported, keyed by price;
`update_id` is the last book counter applied. `apply` accepts only the next id
(`update_id == self.update_id + 1`) and raises `DepthGapError` otherwise: the engine
publishes every change exactly once, so a gap is a bug upstream, not a market condition.
A book restored from a snapshot starts at that snapshot's id.

Complexity: a level update is O(1) for a known price and O(n) for a new or removed price
(insertion in a sorted list, fine for the tens to thousands of levels a book holds);
`top(n)` is O(n).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable

from crossbook.domain.events import DepthChanged
from crossbook.marketdata.views.streams import DepthSnapshot, Level


class DepthGapError(RuntimeError):
    """A `DepthChanged` arrived whose id does not follow the book's last id."""


class _Side:
    """One side: price -> (qty, count), with prices kept sorted ascending."""

    __slots__ = ("descending", "levels", "prices")

    def __init__(self, *, descending: bool) -> None:
        self.descending = descending
        self.levels: dict[int, tuple[int, int]] = {}
        self.prices: list[int] = []

    def set(self, price: int, qty: int, count: int) -> None:
        if qty == 0:
            if self.levels.pop(price, None) is not None:
                del self.prices[bisect_left(self.prices, price)]
            return
        if price not in self.levels:
            insort(self.prices, price)
        self.levels[price] = (qty, count)

    def set_all(self, changes: Iterable[Level]) -> None:
        """`set` each `(price, qty, count)` in order (one call per change event)."""
        levels, prices = self.levels, self.prices
        for price, qty, count in changes:
            if qty:
                if price not in levels:
                    insort(prices, price)
                levels[price] = (qty, count)
            elif levels.pop(price, None) is not None:
                del prices[bisect_left(prices, price)]

    def best(self) -> tuple[int, int] | None:
        if not self.prices:
            return None
        price = self.prices[-1] if self.descending else self.prices[0]
        return price, self.levels[price][0]

    def top(self, limit: int | None) -> list[Level]:
        prices = reversed(self.prices) if self.descending else iter(self.prices)
        out: list[Level] = []
        for price in prices:
            if limit is not None and len(out) >= limit:
                break
            qty, count = self.levels[price]
            out.append((price, qty, count))
        return out


class L2Book:
    __slots__ = ("_asks", "_bids", "symbol", "update_id")

    def __init__(self, symbol: str, update_id: int = 0) -> None:
        self.symbol = symbol
        self.update_id = update_id
        self._bids = _Side(descending=True)
        self._asks = _Side(descending=False)

    @classmethod
    def restore(
        cls, symbol: str, update_id: int, bids: Iterable[Level], asks: Iterable[Level]
    ) -> L2Book:
        book = cls(symbol, update_id)
        for price, qty, count in bids:
            book._bids.set(price, qty, count)
        for price, qty, count in asks:
            book._asks.set(price, qty, count)
        return book

    def apply(self, change: DepthChanged) -> None:
        if change.update_id != self.update_id + 1:
            raise DepthGapError(
                f"{self.symbol}: depth update {change.update_id} after {self.update_id}"
            )
        if change.bids:
            self._bids.set_all(change.bids)
        if change.asks:
            self._asks.set_all(change.asks)
        self.update_id = change.update_id

    def best_bid(self) -> tuple[int, int] | None:
        """`(price, qty)` of the best bid, or None."""
        return self._bids.best()

    def best_ask(self) -> tuple[int, int] | None:
        return self._asks.best()

    def bids(self, limit: int | None = None) -> list[Level]:
        """Best first (descending)."""
        return self._bids.top(limit)

    def asks(self, limit: int | None = None) -> list[Level]:
        """Best first (ascending)."""
        return self._asks.top(limit)

    def snapshot(self, limit: int | None = None) -> DepthSnapshot:
        return DepthSnapshot(
            symbol=self.symbol,
            last_update_id=self.update_id,
            bids=self.bids(limit),
            asks=self.asks(limit),
        )
