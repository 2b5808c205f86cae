"""The rolling 24 h ticker, with exact numbers at and around the window's edge."""

from crossbook.marketdata.views import MarketData, Ticker24h
from crossbook.marketdata.views.candles import HOUR, SECOND
from tests.support.marketdata_factories import SYMBOL, applied, depth, trade

T0 = 1_700_000_000 * SECOND
DAY = 24 * HOUR


def fed() -> MarketData:
    """Four trades: two in second T0+10s, then at +2 h and +5 h; a book 109/111."""
    md = MarketData()
    md.apply(
        [
            applied(1, T0, depth(1, [(109, 4, 1)], [(111, 6, 2)])),
            applied(2, T0 + 10 * SECOND, trade(1, 100, 2)),
            applied(3, T0 + 10 * SECOND + SECOND // 2, trade(2, 120, 1)),
            applied(4, T0 + 2 * HOUR, trade(3, 90, 3)),
            applied(5, T0 + 5 * HOUR, trade(4, 110, 1)),
        ]
    )
    return md


def test_ticker_sums_the_window() -> None:
    """Open is the first price, high/low the extremes, volumes and ids over all trades."""
    md = fed()
    assert md.ticker(SYMBOL) == Ticker24h(
        symbol=SYMBOL,
        open_time=T0 + 5 * HOUR - DAY + SECOND,
        close_time=T0 + 5 * HOUR,
        open=100,
        high=120,
        low=90,
        last=110,
        last_qty=1,
        prev_close=0,
        volume=7,
        quote_volume=2000 + 1200 + 2700 + 1100,
        count=4,
        first_trade_id=1,
        last_trade_id=4,
        bid_price=109,
        bid_qty=4,
        ask_price=111,
        ask_qty=6,
    )


def test_window_edge_is_whole_seconds() -> None:
    """A second stays in until 86,400 s after it began; any later stamp drops it."""
    md = fed()
    md.apply([applied(6, T0 + DAY + 10 * SECOND - 1)])
    assert md.ticker(SYMBOL).count == 4
    md.apply([applied(7, T0 + DAY + 10 * SECOND)])
    ticker = md.ticker(SYMBOL)
    assert (ticker.open, ticker.high, ticker.low, ticker.last, ticker.prev_close) == (
        90,
        110,
        90,
        110,
        120,
    )
    assert (ticker.volume, ticker.quote_volume, ticker.count) == (4, 3800, 2)
    assert (ticker.first_trade_id, ticker.last_trade_id) == (3, 4)
    assert ticker.open_time == T0 + 11 * SECOND


def test_high_and_low_recover_after_the_extreme_expires() -> None:
    """When the high's second leaves the window, the next highest inside it takes over."""
    md = fed()
    md.apply([applied(6, T0 + 2 * HOUR + DAY)])
    ticker = md.ticker(SYMBOL)
    assert (ticker.high, ticker.low, ticker.count, ticker.prev_close) == (110, 110, 1, 90)


def test_empty_window_repeats_the_last_price() -> None:
    """No trade in the window: prices are the last one, sums 0, trade ids -1."""
    md = fed()
    md.apply([applied(6, T0 + 6 * HOUR + DAY)])
    ticker = md.ticker(SYMBOL)
    assert (ticker.open, ticker.high, ticker.low, ticker.last, ticker.prev_close) == (
        110,
        110,
        110,
        110,
        110,
    )
    assert (ticker.volume, ticker.count, ticker.first_trade_id, ticker.last_trade_id) == (
        0,
        0,
        -1,
        -1,
    )


def test_a_symbol_that_never_traded() -> None:
    """A book but no trades: zero prices, -1 ids."""
    md = MarketData()
    md.apply([applied(1, T0, depth(1, [(5, 1, 1)]))])
    ticker = md.ticker(SYMBOL)
    assert (ticker.last, ticker.open, ticker.count, ticker.first_trade_id) == (0, 0, 0, -1)
    assert (ticker.bid_price, ticker.ask_price) == (5, 0)


def test_falling_prices_in_one_second_keep_one_low() -> None:
    """Many trades in one second: the low is the lowest, the high the highest."""
    md = MarketData()
    md.apply(
        [applied(i, T0 + i, trade(i, 200 - i, 1)) for i in range(1, 50)]
        + [applied(50, T0 + 50, trade(50, 300, 1))]
    )
    ticker = md.ticker(SYMBOL)
    assert (ticker.open, ticker.high, ticker.low, ticker.count) == (199, 300, 151, 50)
