"""MarketData as a sink: per-batch stream updates, aggregated trades, queries."""

import pytest

from crossbook.domain.enums import Side
from crossbook.domain.events import BalanceChanged, InstrumentAdded
from crossbook.domain.instruments import Asset, Instrument
from crossbook.domain.values import AccountId, Units
from crossbook.marketdata.views import (
    INTERVALS,
    AggTrade,
    BookTicker,
    DepthDiff,
    DepthGapError,
    MarketData,
    PublicTrade,
)
from crossbook.sequencer.ports import Sink
from tests.support.marketdata_factories import SYMBOL, applied, depth, trade

T = 1_700_000_000_000_000_000


def test_market_data_is_a_sink() -> None:
    """`on_batch` has the sequencer's `Sink` shape and folds the batch."""
    md = MarketData()
    sink: Sink = md
    sink.on_batch([applied(1, T, depth(1, [(100, 1, 1)]))])
    assert md.depth(SYMBOL).bids == [(100, 1, 1)]
    assert md.now == T


def test_one_depth_diff_per_symbol_per_batch() -> None:
    """U/u span the batch's commands; each changed price carries its final total."""
    md = MarketData()
    updates = md.apply(
        [
            applied(1, T, depth(1, [(100, 5, 1)], [(101, 2, 1)])),
            applied(2, T + 1, depth(2, asks=[(101, 1, 1)]), trade(1, 101, 1)),
            applied(3, T + 2, depth(3, [(100, 0, 0), (99, 3, 1)])),
            applied(4, T + 3, depth(1, [(7, 1, 1)], symbol="ETHUSDT")),
        ]
    )
    assert updates.depth == [
        DepthDiff(SYMBOL, 1, 3, T + 2, [(100, 0, 0), (99, 3, 1)], [(101, 1, 1)]),
        DepthDiff("ETHUSDT", 1, 1, T + 3, [(7, 1, 1)], []),
    ]
    assert updates.book_tickers == [
        BookTicker(SYMBOL, 3, 99, 3, 101, 1),
        BookTicker("ETHUSDT", 1, 7, 1, 0, 0),
    ]
    assert updates.trades == [PublicTrade(SYMBOL, 1, 101, 1, 1010, T + 1, buyer_is_maker=False)]
    assert [ticker.symbol for ticker in updates.tickers] == [SYMBOL]
    assert [(k.interval, k.closed) for k in updates.klines] == [(i, False) for i in INTERVALS]

    following = md.apply([applied(5, T + 4, depth(4, [(98, 1, 1)]))])
    assert following.depth == [DepthDiff(SYMBOL, 4, 4, T + 4, [(98, 1, 1)], [])]
    assert following.book_tickers == []  # the best bid and ask did not change
    assert md.depth(SYMBOL, 2).last_update_id == 4


def test_a_batch_without_market_events_is_empty() -> None:
    """Balance changes alone publish nothing."""
    md = MarketData()
    updates = md.apply([applied(1, T, BalanceChanged(AccountId(1), "USDT", Units(5), Units(0)))])
    assert updates.empty
    assert not md.apply([applied(2, T, trade(1, 5, 1))]).empty


def test_depth_gap_is_a_bug() -> None:
    """A DepthChanged that skips an id stops the sink (crash-only)."""
    md = MarketData()
    md.apply([applied(1, T, depth(1, [(100, 1, 1)]))])
    with pytest.raises(DepthGapError):
        md.apply([applied(2, T, depth(3, [(100, 2, 1)]))])


def test_aggregated_trades_group_one_taker_at_one_price_within_a_command() -> None:
    """Runs break on a new price, a new taker or a new command; other events do not."""
    md = MarketData()
    balance = BalanceChanged(AccountId(1), "USDT", Units(0), Units(0))
    updates = md.apply(
        [
            applied(
                1,
                T,
                trade(1, 100, 1),
                balance,
                trade(2, 100, 2),
                trade(3, 101, 1),
                trade(4, 101, 5, taker=8, taker_side=Side.SELL),
            ),
            applied(2, T + 5, trade(5, 101, 1, taker=8, taker_side=Side.SELL)),
        ]
    )
    assert updates.agg_trades == [
        AggTrade(SYMBOL, 1, 100, 3, 3000, 1, 2, T, buyer_is_maker=False),
        AggTrade(SYMBOL, 3, 101, 1, 1010, 3, 3, T, buyer_is_maker=False),
        AggTrade(SYMBOL, 4, 101, 5, 5050, 4, 4, T, buyer_is_maker=True),
        AggTrade(SYMBOL, 5, 101, 1, 1010, 5, 5, T + 5, buyer_is_maker=True),
    ]
    assert [a.agg_id for a in md.agg_trades(SYMBOL, from_id=3)] == [3, 4, 5]
    assert [a.agg_id for a in md.agg_trades(SYMBOL, limit=2)] == [4, 5]
    assert [a.agg_id for a in md.agg_trades(SYMBOL, start=T + 1)] == [5]
    assert [a.agg_id for a in md.agg_trades(SYMBOL, end=T, limit=1)] == [1]
    assert md.agg_trades(SYMBOL, limit=0) == []
    assert [t.trade_id for t in md.trades(SYMBOL, from_id=4)] == [4, 5]
    assert [t.trade_id for t in md.trades(SYMBOL, limit=3)] == [3, 4, 5]


def test_trade_rings_are_bounded() -> None:
    """Only the last `trade_history` trades and aggregated trades are kept."""
    md = MarketData(trade_history=2)
    md.apply([applied(i, T + i, trade(i, 100, 1, taker=i)) for i in range(1, 6)])
    assert [t.trade_id for t in md.trades(SYMBOL)] == [4, 5]
    assert [a.agg_id for a in md.agg_trades(SYMBOL)] == [4, 5]


def test_klines_publish_closed_candles_then_the_open_one() -> None:
    """A trade in a new second closes the previous 1s candle in the same batch."""
    md = MarketData()
    second = 1_000_000_000
    updates = md.apply(
        [applied(1, T, trade(1, 100, 1)), applied(2, T + 2 * second, trade(2, 105, 1))]
    )
    one_second = [k for k in updates.klines if k.interval == "1s"]
    assert [(k.closed, k.candle.open_time, k.candle.close) for k in one_second] == [
        (True, T, 100),
        (False, T + 2 * second, 105),
    ]
    minute = md.klines(SYMBOL, "1m")
    assert [(c.open, c.close, c.count) for c in minute] == [(100, 105, 2)]
    with pytest.raises(KeyError):
        md.klines(SYMBOL, "7m")


def test_symbols_come_from_instruments_and_events() -> None:
    """`InstrumentAdded` registers a symbol; querying an unknown one is a KeyError."""
    usdt, btc = Asset("USDT", 6), Asset("BTC", 8)
    instrument = Instrument.create("BTCUSDT", btc, usdt, "0.01", "0.0001")
    md = MarketData()
    md.apply([applied(1, T, InstrumentAdded(instrument))])
    assert md.symbols() == [SYMBOL]
    assert md.book_ticker(SYMBOL) == BookTicker(SYMBOL, 0, 0, 0, 0, 0)
    assert md.trades(SYMBOL) == []
    with pytest.raises(KeyError):
        md.depth("ETHUSDT")


def test_restored_book_continues_from_its_id() -> None:
    """Recovery seeds the book; the next DepthChanged must follow the snapshot's id."""
    md = MarketData()
    md.restore_book(SYMBOL, 41, [(100, 1, 1)], [(102, 2, 1)])
    updates = md.apply([applied(1, T, depth(42, asks=[(101, 1, 1)]))])
    assert updates.depth[0].first_update_id == 42
    assert md.book(SYMBOL).asks() == [(101, 1, 1), (102, 2, 1)]
