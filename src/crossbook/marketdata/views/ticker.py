"""The rolling 24 h ticker of one symbol, driven by stamps, never by a clock.

Window: the 86,400 whole seconds ending with the second of `now`, where `now` is a sequencer
stamp (the latest the caller has seen). A trade is in the window when
`second(trade.ts) > second(now) - 86_400`; so `open_time` is the start of the window's first
second and `close_time` is `now`.

Trades are kept as one aggregate per second that had trades (at most 86,400 per symbol,
whatever the trade rate), so sums are updated in O(1) per trade and per expired second, and
high and low come from monotonic queues of per-second extremes (amortised O(1)).

Fields follow Binance `ticker/24hr`: `open` is the first price in the window, `prev_close` the
last price before it (0 if none), `last`/`last_qty` the latest trade ever. With no trade in
the window, `open`, `high` and `low` equal `last`, volumes and `count` are 0, and both trade
ids are -1.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from crossbook.marketdata.views.candles import DAY, SECOND, Bar
from crossbook.marketdata.views.streams import PublicTrade

WINDOW_SECONDS: Final = DAY // SECOND


class _Second:
    __slots__ = (
        "close",
        "count",
        "first_id",
        "high",
        "last_id",
        "low",
        "open",
        "qty",
        "quote",
        "start",
    )

    def __init__(self, start: int, price: int, trade_id: int) -> None:
        self.start = start
        self.open = self.high = self.low = self.close = price
        self.qty = self.quote = self.count = 0
        self.first_id = self.last_id = trade_id


class Window:
    """Per-second trade aggregates over the last 24 h, with running totals."""

    __slots__ = (
        "_highs",
        "_lows",
        "_seconds",
        "count",
        "last",
        "last_qty",
        "prev_close",
        "quote_volume",
        "volume",
    )

    def __init__(self) -> None:
        self._seconds: deque[_Second] = deque()
        self._highs: deque[tuple[int, int]] = deque()
        self._lows: deque[tuple[int, int]] = deque()
        self.volume = self.quote_volume = self.count = 0
        self.last = self.last_qty = self.prev_close = 0

    def add(self, trade: PublicTrade) -> None:
        self.add_bar(Bar(trade))

    def add_bar(self, bar: Bar) -> None:
        """Count a bar of same-stamp trades (the same as adding them one by one)."""
        ts, high, low = bar.ts, bar.high, bar.low
        second = ts - ts % SECOND
        seconds = self._seconds
        if seconds and second <= seconds[-1].start:
            bucket = seconds[-1]
            second = bucket.start
        else:
            bucket = _Second(second, bar.open, bar.first_id)
            seconds.append(bucket)
        bucket.high = max(bucket.high, high)
        bucket.low = min(bucket.low, low)
        bucket.close = bar.close
        bucket.qty += bar.qty
        bucket.quote += bar.quote_qty
        bucket.count += bar.count
        bucket.last_id = bar.last_id
        self.volume += bar.qty
        self.quote_volume += bar.quote_qty
        self.count += bar.count
        self.last, self.last_qty = bar.close, bar.last_qty
        # Keep one entry per second at most: an equal or better extreme of the same second
        # already covers this price until that second expires.
        highs, lows = self._highs, self._lows
        while highs and highs[-1][1] <= high:
            highs.pop()
        if not highs or highs[-1][0] != second:
            highs.append((second, high))
        while lows and lows[-1][1] >= low:
            lows.pop()
        if not lows or lows[-1][0] != second:
            lows.append((second, low))

    def window_start(self, now: int) -> int:
        return now - now % SECOND - (WINDOW_SECONDS - 1) * SECOND

    def expire(self, now: int) -> None:
        """Drop the seconds that left the window ending at stamp `now`."""
        start = self.window_start(now)
        seconds = self._seconds
        while seconds and seconds[0].start < start:
            gone = seconds.popleft()
            self.volume -= gone.qty
            self.quote_volume -= gone.quote
            self.count -= gone.count
            self.prev_close = gone.close
        while self._highs and self._highs[0][0] < start:
            self._highs.popleft()
        while self._lows and self._lows[0][0] < start:
            self._lows.popleft()

    def open(self) -> int:
        return self._seconds[0].open if self._seconds else self.last

    def high(self) -> int:
        return self._highs[0][1] if self._highs else self.last

    def low(self) -> int:
        return self._lows[0][1] if self._lows else self.last

    def first_trade_id(self) -> int:
        return self._seconds[0].first_id if self._seconds else -1

    def last_trade_id(self) -> int:
        return self._seconds[-1].last_id if self._seconds else -1
