"""MarketData folded from the engine's own events agrees with the engine.

Random limit, market and cancel commands run through a real `Exchange`; their events reach
`MarketData` in random batches. The rebuilt book equals the engine's depth level by level
(price, visible qty, order count), and trades, aggTrades, candles and the ticker account for
every fill exactly once.
"""

from __future__ import annotations

from hypothesis import event, given, settings
from hypothesis import strategies as st

from crossbook.domain import commands as cmd
from crossbook.domain.enums import OrderType, Side, TimeInForce
from crossbook.domain.events import InstrumentAdded, OrderAccepted, TradeExecuted
from crossbook.domain.values import AccountId, Lots, OrderId, Ticks
from crossbook.marketdata.views import INTERVALS, MarketData
from crossbook.sequencer.ports import Applied
from tests.support.factories import SYMBOL, venue

orders = st.one_of(
    st.tuples(
        st.just("limit"),
        st.integers(1, 3),
        st.sampled_from(Side),
        st.integers(95, 105),
        st.integers(1, 6),
    ),
    st.tuples(
        st.just("market"), st.integers(1, 3), st.sampled_from(Side), st.just(0), st.integers(1, 4)
    ),
    st.tuples(
        st.just("cancel"), st.integers(1, 3), st.just(Side.BUY), st.integers(0, 40), st.just(0)
    ),
)


@settings(max_examples=60, deadline=None)
@given(
    actions=st.lists(orders, min_size=1, max_size=60),
    cuts=st.lists(st.integers(1, 6), min_size=1, max_size=10),
)
def test_market_data_mirrors_the_engine(
    actions: list[tuple[str, int, Side, int, int]], cuts: list[int]
) -> None:
    v = venue()
    md = MarketData()
    md.apply(
        [
            Applied(seq, ts, command, [InstrumentAdded(command.instrument)])
            for seq, ts, command in v.log
            if isinstance(command, cmd.AddInstrument)
        ]
    )
    stamped: list[Applied] = []
    placed: list[int] = []
    for index, (kind, account, side, price, qty) in enumerate(actions):
        command: cmd.Command
        if kind == "cancel":
            target = placed[price % len(placed)] if placed else 1
            command = cmd.CancelOrder(AccountId(account), SYMBOL, OrderId(target))
        else:
            command = cmd.PlaceOrder(
                AccountId(account),
                SYMBOL,
                side,
                OrderType.LIMIT if kind == "limit" else OrderType.MARKET,
                Lots(qty),
                Ticks(price),
                TimeInForce.GTC if kind == "limit" else TimeInForce.IOC,
            )
        ts = 10**18 + index * 700_000_000
        events = v.do(command, ts)
        placed.extend(int(e.order_id) for e in events if isinstance(e, OrderAccepted))
        stamped.append(Applied(v.log[-1][0], ts, command, events))

    fills: list[TradeExecuted] = []
    start = 0
    for cut in cuts * len(stamped):
        if start >= len(stamped):
            break
        batch = stamped[start : start + cut]
        start += cut
        md.apply(batch)
        fills.extend(e for a in batch for e in a.events if isinstance(e, TradeExecuted))

    event("with fills" if fills else "no fills")
    bids, asks = v.ex.depth(SYMBOL, 10**6)
    assert md.book(SYMBOL).bids() == bids
    assert md.book(SYMBOL).asks() == asks

    assert [t.trade_id for t in md.trades(SYMBOL, limit=1000)] == [f.trade_id for f in fills]
    aggs = md.agg_trades(SYMBOL, limit=1000)
    assert sum(a.qty for a in aggs) == sum(f.qty for f in fills)
    assert sum(a.last_trade_id - a.first_trade_id + 1 for a in aggs) == len(fills)
    volume = sum(f.qty for f in fills)
    for interval in INTERVALS:
        candles = md.klines(SYMBOL, interval, limit=1000)
        assert sum(c.volume for c in candles) == volume
        assert sum(c.count for c in candles) == len(fills)
    ticker = md.ticker(SYMBOL)
    assert (ticker.volume, ticker.count) == (volume, len(fills))
    if fills:
        assert ticker.last == fills[-1].price
