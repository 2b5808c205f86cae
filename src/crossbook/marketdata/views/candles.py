"""Candles (klines) for every Binance interval, driven by trade stamps alone.

Intervals and their alignment (all UTC, on the sequencer's nanosecond stamps):

- `1s` .. `1d`: fixed lengths, aligned to the Unix epoch.
- `3d`: three days aligned to the epoch (as Binance).
- `1w`: weeks starting Monday 00:00.
- `1M`: calendar months, computed with integer civil-date arithmetic (no clock, no datetime).

A candle opens with the first trade in its interval and closes when a trade lands in a later
interval; candles exist only for intervals that had trades (no empty candles are invented).
Stamps are non-decreasing; a trade stamped before the open candle is counted in it. Each
series keeps a bounded history of closed candles plus the open one.

Trades sharing one stamp (all the trades of a sequencer batch do) fall into the same candle
of every interval, so the market data views fold them into one `Bar` first and add the bar
to each of the sixteen series once: the same candles as adding the trades one by one.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from crossbook.marketdata.views.streams import Candle, PublicTrade

SECOND: Final = 1_000_000_000
MINUTE: Final = 60 * SECOND
HOUR: Final = 60 * MINUTE
DAY: Final = 24 * HOUR
WEEK: Final = 7 * DAY
_MONDAY_OFFSET: Final = 4 * DAY
"""1970-01-01 was a Thursday; the first Monday is four days later."""

FIXED_INTERVALS: Final[dict[str, int]] = {
    "1s": SECOND,
    "1m": MINUTE,
    "3m": 3 * MINUTE,
    "5m": 5 * MINUTE,
    "15m": 15 * MINUTE,
    "30m": 30 * MINUTE,
    "1h": HOUR,
    "2h": 2 * HOUR,
    "4h": 4 * HOUR,
    "6h": 6 * HOUR,
    "8h": 8 * HOUR,
    "12h": 12 * HOUR,
    "1d": DAY,
    "3d": 3 * DAY,
}
INTERVALS: Final[tuple[str, ...]] = (*FIXED_INTERVALS, "1w", "1M")
"""Every Binance kline interval, shortest first."""


def _civil_from_days(days: int) -> tuple[int, int]:
    # Year and month of a day count since 1970-01-01 (H. Hinnant's algorithm).
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month


def _days_from_civil(year: int, month: int) -> int:
    # Day count since 1970-01-01 of the first day of `month`.
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def interval_bounds(interval: str, ts: int) -> tuple[int, int]:
    """`(open, next_open)` in ns of the `interval` candle containing stamp `ts`.

    Raises `KeyError` for an unknown interval.
    """
    length = FIXED_INTERVALS.get(interval)
    if length is not None:
        start = ts - ts % length
        return start, start + length
    if interval == "1w":
        start = ts - (ts - _MONDAY_OFFSET) % WEEK
        return start, start + WEEK
    if interval == "1M":
        year, month = _civil_from_days(ts // DAY)
        following = (year + 1, 1) if month == 12 else (year, month + 1)
        return _days_from_civil(year, month) * DAY, _days_from_civil(*following) * DAY
    raise KeyError(interval)


class Bar:
    """Trades of one symbol with one stamp, folded in order (open/high/low/close, sums)."""

    __slots__ = (
        "close",
        "count",
        "first_id",
        "high",
        "last_id",
        "last_qty",
        "low",
        "open",
        "qty",
        "quote_qty",
        "taker_buy_qty",
        "taker_buy_quote_qty",
        "ts",
    )

    def __init__(self, trade: PublicTrade) -> None:
        self.ts = trade.ts
        self.open = self.high = self.low = self.close = trade.price
        self.qty = self.last_qty = trade.qty
        self.quote_qty = trade.quote_qty
        self.count = 1
        if trade.buyer_is_maker:
            self.taker_buy_qty = self.taker_buy_quote_qty = 0
        else:
            self.taker_buy_qty, self.taker_buy_quote_qty = trade.qty, trade.quote_qty
        self.first_id = self.last_id = trade.trade_id

    def add(self, trade: PublicTrade) -> None:
        """Fold a later trade with the same stamp."""
        price, qty = trade.price, trade.qty
        if price > self.high:
            self.high = price
        elif price < self.low:
            self.low = price
        self.close, self.last_qty = price, qty
        self.qty += qty
        self.quote_qty += trade.quote_qty
        self.count += 1
        if not trade.buyer_is_maker:
            self.taker_buy_qty += qty
            self.taker_buy_quote_qty += trade.quote_qty
        self.last_id = trade.trade_id


class _OpenCandle:
    __slots__ = (
        "close",
        "count",
        "first_trade_id",
        "high",
        "last_trade_id",
        "low",
        "next_open",
        "open",
        "open_time",
        "quote_volume",
        "taker_buy_quote_volume",
        "taker_buy_volume",
        "volume",
    )

    def __init__(self, open_time: int, next_open: int, price: int, trade_id: int) -> None:
        self.open_time = open_time
        self.next_open = next_open
        self.open = self.high = self.low = self.close = price
        self.volume = self.quote_volume = self.count = 0
        self.taker_buy_volume = self.taker_buy_quote_volume = 0
        self.first_trade_id = self.last_trade_id = trade_id

    def add(self, bar: Bar) -> None:
        self.high = max(self.high, bar.high)
        self.low = min(self.low, bar.low)
        self.close = bar.close
        self.volume += bar.qty
        self.quote_volume += bar.quote_qty
        self.count += bar.count
        self.taker_buy_volume += bar.taker_buy_qty
        self.taker_buy_quote_volume += bar.taker_buy_quote_qty
        self.last_trade_id = bar.last_id

    def freeze(self) -> Candle:
        return Candle(
            open_time=self.open_time,
            close_time=self.next_open - 1,
            open=self.open,
            high=self.high,
            low=self.low,
            close=self.close,
            volume=self.volume,
            quote_volume=self.quote_volume,
            count=self.count,
            taker_buy_volume=self.taker_buy_volume,
            taker_buy_quote_volume=self.taker_buy_quote_volume,
            first_trade_id=self.first_trade_id,
            last_trade_id=self.last_trade_id,
        )


class CandleSeries:
    """The candles of one symbol at one interval."""

    __slots__ = ("_closed", "_open", "interval")

    def __init__(self, interval: str, history: int) -> None:
        interval_bounds(interval, 0)  # fail early on an unknown interval
        self.interval = interval
        self._closed: deque[Candle] = deque(maxlen=history)
        self._open: _OpenCandle | None = None

    def add(self, trade: PublicTrade) -> Candle | None:
        """Count one trade; return the candle it closed, if it opened a new one."""
        return self.add_bar(Bar(trade))

    def add_bar(self, bar: Bar) -> Candle | None:
        """Count a bar of same-stamp trades; return the candle it closed, if any."""
        closed = None
        current = self._open
        if current is None or bar.ts >= current.next_open:
            if current is not None:
                closed = current.freeze()
                self._closed.append(closed)
            start, next_open = interval_bounds(self.interval, bar.ts)
            current = self._open = _OpenCandle(start, next_open, bar.open, bar.first_id)
        current.add(bar)
        return closed

    def current(self) -> Candle | None:
        return None if self._open is None else self._open.freeze()

    def candles(
        self, start: int | None = None, end: int | None = None, limit: int = 500
    ) -> list[Candle]:
        """Candles (oldest first) whose open time is in `[start, end]`.

        With `start`, the first `limit` from there; otherwise the latest `limit` (as Binance).
        """
        every = list(self._closed)
        if self._open is not None:
            every.append(self._open.freeze())
        chosen = [
            candle
            for candle in every
            if (start is None or candle.open_time >= start)
            and (end is None or candle.open_time <= end)
        ]
        if limit <= 0:
            return []
        return chosen[:limit] if start is not None else chosen[-limit:]
