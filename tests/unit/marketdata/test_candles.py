"""Candle interval alignment and OHLCV arithmetic with exact numbers."""

from datetime import UTC, datetime

import pytest

from crossbook.marketdata.views import INTERVALS, Candle, PublicTrade, interval_bounds
from crossbook.marketdata.views.candles import SECOND, CandleSeries


def ns(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    return int(moment.timestamp()) * SECOND


def trade(trade_id: int, ts: int, price: int, qty: int, *, taker_buy: bool = True) -> PublicTrade:
    return PublicTrade("BTCUSDT", trade_id, price, qty, price * qty * 10, ts, not taker_buy)


T = ns(2024, 2, 29, 13, 47, 5) + 500_000_000  # a Thursday, leap day, half a second in


@pytest.mark.parametrize(
    ("interval", "start", "next_start"),
    [
        ("1s", ns(2024, 2, 29, 13, 47, 5), ns(2024, 2, 29, 13, 47, 6)),
        ("1m", ns(2024, 2, 29, 13, 47), ns(2024, 2, 29, 13, 48)),
        ("3m", ns(2024, 2, 29, 13, 45), ns(2024, 2, 29, 13, 48)),
        ("5m", ns(2024, 2, 29, 13, 45), ns(2024, 2, 29, 13, 50)),
        ("15m", ns(2024, 2, 29, 13, 45), ns(2024, 2, 29, 14, 0)),
        ("30m", ns(2024, 2, 29, 13, 30), ns(2024, 2, 29, 14, 0)),
        ("1h", ns(2024, 2, 29, 13), ns(2024, 2, 29, 14)),
        ("2h", ns(2024, 2, 29, 12), ns(2024, 2, 29, 14)),
        ("4h", ns(2024, 2, 29, 12), ns(2024, 2, 29, 16)),
        ("6h", ns(2024, 2, 29, 12), ns(2024, 2, 29, 18)),
        ("8h", ns(2024, 2, 29, 8), ns(2024, 2, 29, 16)),
        ("12h", ns(2024, 2, 29, 12), ns(2024, 3, 1, 0)),
        ("1d", ns(2024, 2, 29), ns(2024, 3, 1)),
        ("3d", ns(2024, 2, 29), ns(2024, 3, 3)),  # day 19782 since the epoch, a multiple of 3
        ("1w", ns(2024, 2, 26), ns(2024, 3, 4)),  # Monday to Monday
        ("1M", ns(2024, 2, 1), ns(2024, 3, 1)),
    ],
)
def test_interval_bounds(interval: str, start: int, next_start: int) -> None:
    """Every Binance interval, aligned in UTC (weeks from Monday, calendar months)."""
    assert (start, next_start) == interval_bounds(interval, T)


def test_all_binance_intervals_are_known() -> None:
    """The sixteen Binance kline intervals, shortest first."""
    assert list(INTERVALS) == [
        "1s",
        "1m",
        "3m",
        "5m",
        "15m",
        "30m",
        "1h",
        "2h",
        "4h",
        "6h",
        "8h",
        "12h",
        "1d",
        "3d",
        "1w",
        "1M",
    ]


@pytest.mark.parametrize(
    ("moment", "start", "next_start"),
    [
        (ns(2023, 12, 31, 23, 59, 59), ns(2023, 12, 1), ns(2024, 1, 1)),
        (ns(2024, 1, 1), ns(2024, 1, 1), ns(2024, 2, 1)),
        (ns(2023, 2, 14), ns(2023, 2, 1), ns(2023, 3, 1)),
        (ns(2000, 3, 1), ns(2000, 3, 1), ns(2000, 4, 1)),
        (ns(1969, 12, 31, 12), ns(1969, 12, 1), ns(1970, 1, 1)),
    ],
)
def test_month_bounds_across_years(moment: int, start: int, next_start: int) -> None:
    """Months use civil-date arithmetic, including year ends and before the epoch."""
    assert (start, next_start) == interval_bounds("1M", moment)


def test_week_starts_on_monday_at_midnight() -> None:
    """A Monday at 00:00 opens its own week; the Sunday before belongs to the previous one."""
    assert ns(2024, 3, 4) == interval_bounds("1w", ns(2024, 3, 4))[0]
    assert ns(2024, 2, 26) == interval_bounds("1w", ns(2024, 3, 3, 23, 59, 59))[0]


def test_unknown_interval() -> None:
    """An interval Binance does not define is a KeyError (the gateway answers -1120)."""
    with pytest.raises(KeyError):
        interval_bounds("2m", T)
    with pytest.raises(KeyError):
        CandleSeries("7d", 10)


def test_candle_ohlcv_and_close_on_next_interval() -> None:
    """Exact OHLCV, taker-buy volumes and trade ids; a later trade closes the candle."""
    series = CandleSeries("1m", 10)
    minute = ns(2024, 2, 29, 13, 47)
    assert series.add(trade(1, minute + 1, 100, 2)) is None
    assert series.add(trade(2, minute + 2 * SECOND, 103, 1, taker_buy=False)) is None
    assert series.add(trade(3, minute + 59 * SECOND, 98, 4)) is None
    assert series.add(trade(4, minute + 60 * SECOND - 1, 101, 1, taker_buy=False)) is None
    first = Candle(
        open_time=minute,
        close_time=minute + 60 * SECOND - 1,
        open=100,
        high=103,
        low=98,
        close=101,
        volume=8,
        quote_volume=2000 + 1030 + 3920 + 1010,
        count=4,
        taker_buy_volume=6,
        taker_buy_quote_volume=2000 + 3920,
        first_trade_id=1,
        last_trade_id=4,
    )
    assert first == series.current()
    assert first == series.add(trade(5, minute + 3 * 60 * SECOND, 99, 1))
    second = series.current()
    assert second is not None
    assert (minute + 180 * SECOND, 99, 99, 99, 99, 1, 1) == (
        second.open_time,
        second.open,
        second.high,
        second.low,
        second.close,
        second.volume,
        second.taker_buy_volume,
    )


def test_candle_history_is_bounded_and_queryable() -> None:
    """Closed candles keep the last `history`; queries filter by open time and limit."""
    series = CandleSeries("1s", 3)
    assert series.candles() == []
    assert series.current() is None
    for second in range(6):
        series.add(trade(second + 1, second * SECOND, 100 + second, 1))
    opens = [candle.open for candle in series.candles()]
    assert opens == [102, 103, 104, 105]  # three closed plus the open one
    assert [c.open for c in series.candles(limit=2)] == [104, 105]
    assert [c.open for c in series.candles(start=3 * SECOND, limit=2)] == [103, 104]
    assert [c.open for c in series.candles(end=3 * SECOND)] == [102, 103]
    assert series.candles(limit=0) == []


def test_a_stamp_before_the_open_candle_counts_in_it() -> None:
    """Stamps should not go backwards; if one does, it is folded into the open candle."""
    series = CandleSeries("1m", 3)
    series.add(trade(1, 120 * SECOND, 100, 1))
    assert series.add(trade(2, 30 * SECOND, 90, 1)) is None
    current = series.current()
    assert current is not None
    assert (current.open_time, current.low, current.count) == (120 * SECOND, 90, 2)
