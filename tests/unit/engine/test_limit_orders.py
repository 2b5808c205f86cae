"""Limit orders: price-time priority, time in force, and the book's shape after matching."""

from __future__ import annotations

from crossbook.domain import events as ev
from crossbook.domain.enums import CloseReason, OrderStatus, Side, TimeInForce
from crossbook.domain.rejects import Reject
from tests.support.factories import (
    ALICE,
    BOB,
    CAROL,
    SYMBOL,
    accepted_id,
    of,
    rejected_code,
    trades,
    venue,
)


def test_a_limit_order_that_does_not_cross_rests_and_shows_in_depth() -> None:
    v = venue()
    events = v.buy(ALICE, 5, 100)
    oid = accepted_id(events)
    assert not trades(events)
    assert v.depth() == ([(100, 5, 1)], [])
    assert v.ex.best_bid_ask(SYMBOL) == (100, None)
    [view] = v.ex.open_orders(ALICE)
    assert (view.order_id, view.status, view.filled) == (oid, OrderStatus.NEW, 0)
    [change] = of(events, ev.DepthChanged)
    assert (change.bids, change.asks) == ([(100, 5, 1)], [])


def test_trades_happen_at_the_resting_orders_price() -> None:
    v = venue()
    maker = accepted_id(v.sell(ALICE, 3, 100))
    events = v.buy(BOB, 3, 105)
    taker = accepted_id(events)
    assert trades(events) == [(maker, taker, 100, 3)]
    [trade] = of(events, ev.TradeExecuted)
    assert trade.quote_qty == 300
    assert trade.taker_side is Side.BUY
    assert (trade.maker_status, trade.taker_status) == (OrderStatus.FILLED, OrderStatus.FILLED)
    assert v.depth() == ([], [])
    assert v.ex.last_price(SYMBOL) == 100


def test_orders_at_one_price_fill_first_in_first_out() -> None:
    v = venue()
    first = accepted_id(v.sell(ALICE, 2, 100))
    second = accepted_id(v.sell(BOB, 2, 100))
    third = accepted_id(v.sell(CAROL, 2, 100))
    events = v.buy(ALICE, 5, 100)
    taker = accepted_id(events)
    assert trades(events) == [
        (first, taker, 100, 2),
        (second, taker, 100, 2),
        (third, taker, 100, 1),
    ]
    assert v.queue(Side.SELL, 100) == [third]
    assert v.depth() == ([], [(100, 1, 1)])


def test_a_better_price_trades_before_an_earlier_worse_one() -> None:
    v = venue()
    worse = accepted_id(v.sell(ALICE, 1, 101))
    better = accepted_id(v.sell(BOB, 1, 100))
    events = v.buy(CAROL, 2, 101)
    taker = accepted_id(events)
    assert trades(events) == [(better, taker, 100, 1), (worse, taker, 101, 1)]


def test_the_residual_of_a_crossing_limit_becomes_the_best_price() -> None:
    v = venue()
    v.sell(ALICE, 2, 100)
    v.sell(ALICE, 2, 101)
    v.buy(BOB, 1, 98)
    taker = accepted_id(v.buy(BOB, 7, 101))
    assert v.depth() == ([(101, 3, 1), (98, 1, 1)], [])
    assert v.ex.best_bid_ask(SYMBOL) == (101, None)
    [view] = v.ex.orders_at(SYMBOL, Side.BUY, 101)
    assert (view.order_id, view.filled, view.status) == (taker, 4, OrderStatus.PARTIALLY_FILLED)


def test_a_marketable_limit_stops_at_its_own_price() -> None:
    v = venue()
    v.sell(ALICE, 2, 100)
    v.sell(ALICE, 2, 102)
    events = v.buy(BOB, 5, 101)
    assert [t[2:] for t in trades(events)] == [(100, 2)]
    assert v.depth() == ([(101, 3, 1)], [(102, 2, 1)])


def test_a_sell_limit_sweeps_bids_best_first_and_rests_its_residual() -> None:
    v = venue()
    low = accepted_id(v.buy(ALICE, 1, 98))
    high = accepted_id(v.buy(ALICE, 1, 99))
    events = v.sell(BOB, 3, 98)
    taker = accepted_id(events)
    assert trades(events) == [(high, taker, 99, 1), (low, taker, 98, 1)]
    assert v.depth() == ([], [(98, 1, 1)])


def test_an_ioc_sweeps_several_levels_and_expires_the_rest() -> None:
    v = venue()
    ids = [accepted_id(v.sell(ALICE, 2, p)) for p in (100, 101, 102, 103)]
    events = v.buy(BOB, 10, 102, tif=TimeInForce.IOC)
    taker = accepted_id(events)
    assert trades(events) == [
        (ids[0], taker, 100, 2),
        (ids[1], taker, 101, 2),
        (ids[2], taker, 102, 2),
    ]
    [expired] = of(events, ev.OrderExpired)
    assert (expired.order_id, expired.reason, expired.filled, expired.status) == (
        taker,
        CloseReason.IOC_REMAINDER,
        6,
        OrderStatus.EXPIRED,
    )
    assert v.depth() == ([], [(103, 2, 1)])
    assert v.ex.open_orders(BOB) == []
    # the unused hold of the expired remainder is released
    assert v.balance(BOB, "USD")[1] == 0
    assert v.balance(BOB, "USD")[0] == 10**9 - (200 + 202 + 204)


def test_an_ioc_that_fills_completely_is_filled_not_expired() -> None:
    v = venue()
    v.sell(ALICE, 3, 100)
    events = v.buy(BOB, 3, 100, tif=TimeInForce.IOC)
    assert not of(events, ev.OrderExpired)
    assert of(events, ev.TradeExecuted)[-1].taker_status is OrderStatus.FILLED


def test_an_ioc_with_nothing_to_take_expires_without_resting() -> None:
    v = venue()
    events = v.buy(BOB, 3, 100, tif=TimeInForce.IOC)
    [expired] = of(events, ev.OrderExpired)
    assert (expired.filled, expired.reason) == (0, CloseReason.IOC_REMAINDER)
    assert v.depth() == ([], [])
    assert v.balance(BOB, "USD") == (10**9, 0)


def test_a_fok_fills_across_several_levels_when_enough_is_there() -> None:
    v = venue()
    v.sell(ALICE, 2, 100)
    v.sell(BOB, 2, 101)
    v.sell(CAROL, 2, 102)
    events = v.buy(ALICE, 5, 102, tif=TimeInForce.FOK)
    assert [t[2:] for t in trades(events)] == [(100, 2), (101, 2), (102, 1)]
    assert of(events, ev.TradeExecuted)[-1].taker_status is OrderStatus.FILLED
    assert v.depth() == ([], [(102, 1, 1)])


def test_a_fok_that_cannot_fill_is_rejected_and_changes_nothing() -> None:
    v = venue()
    v.sell(ALICE, 2, 100)
    v.sell(BOB, 2, 101)
    v.sell(CAROL, 2, 103)
    before = v.ex.state_hash()
    events = v.buy(ALICE, 5, 102, tif=TimeInForce.FOK)
    assert rejected_code(events) == Reject.FOK_CANNOT_FILL
    assert len(events) == 1
    assert v.ex.state_hash() == before


def test_a_fok_counts_hidden_iceberg_size() -> None:
    v = venue()
    v.sell(ALICE, 10, 100, visible_qty=2)
    events = v.buy(BOB, 9, 100, tif=TimeInForce.FOK)
    assert sum(t[3] for t in trades(events)) == 9
    assert v.depth() == ([], [(100, 1, 1)])


def test_a_gtd_order_expires_on_an_expire_command_stamped_at_its_time() -> None:
    v = venue()
    oid = accepted_id(v.buy(ALICE, 2, 100, tif=TimeInForce.GTD, expire_ts=5_000))
    assert v.ex.next_expiry() == 5_000
    assert not of(v.expire(4_999), ev.OrderExpired)
    assert v.depth() == ([(100, 2, 1)], [])
    events = v.expire(5_000)
    [expired] = of(events, ev.OrderExpired)
    assert (expired.order_id, expired.reason, expired.status) == (
        oid,
        CloseReason.GTD_EXPIRED,
        OrderStatus.EXPIRED,
    )
    assert v.depth() == ([], [])
    assert v.balance(ALICE, "USD") == (10**9, 0)
    assert v.ex.next_expiry() is None


def test_a_due_gtd_order_expires_lazily_before_a_later_order_can_trade_with_it() -> None:
    v = venue()
    gtd = accepted_id(v.sell(ALICE, 2, 100, tif=TimeInForce.GTD, expire_ts=5_000))
    v.ts = 6_000
    events = v.buy(BOB, 2, 100)
    [expired] = of(events, ev.OrderExpired)
    assert expired.order_id == gtd
    assert not trades(events)
    # the expiry comes before the new order's acceptance
    kinds = [type(e) for e in events]
    assert kinds.index(ev.OrderExpired) < kinds.index(ev.OrderAccepted)
    assert v.depth() == ([(100, 2, 1)], [])


def test_a_gtd_order_not_yet_due_still_trades() -> None:
    v = venue()
    gtd = accepted_id(v.sell(ALICE, 2, 100, tif=TimeInForce.GTD, expire_ts=5_000))
    v.ts = 4_999
    events = v.buy(BOB, 2, 100)
    assert [t[0] for t in trades(events)] == [gtd]
    assert v.ex.next_expiry() is None


def test_cancel_head_middle_and_tail_of_a_level_then_sweep_fills_the_survivors_in_order() -> None:
    v = venue()
    ids = [accepted_id(v.sell(ALICE if i % 2 else CAROL, 1, 100)) for i in range(7)]
    for i in (0, 3, 6):
        account = ALICE if i % 2 else CAROL
        assert of(v.cancel(account, ids[i]), ev.OrderCanceled)
    survivors = [ids[i] for i in (1, 2, 4, 5)]
    assert v.queue(Side.SELL, 100) == survivors
    assert v.depth() == ([], [(100, 4, 4)])
    events = v.buy(BOB, 10, 100)
    assert [t[0] for t in trades(events)] == survivors
    assert v.depth() == ([(100, 6, 1)], [])


def test_a_deep_fifo_queue_with_scattered_cancels_fills_in_arrival_order() -> None:
    v = venue()
    ids = [accepted_id(v.sell(ALICE, 1, 100)) for _ in range(200)]
    canceled = set(ids[::7]) | set(ids[5::11]) | {ids[-1]}
    for oid in sorted(canceled, reverse=True):
        v.cancel(ALICE, oid)
    survivors = [oid for oid in ids if oid not in canceled]
    assert v.queue(Side.SELL, 100) == survivors
    events = v.buy(BOB, len(survivors) - 3, 100)
    assert [t[0] for t in trades(events)] == survivors[:-3]
    assert v.queue(Side.SELL, 100) == survivors[-3:]
    assert v.depth() == ([], [(100, 3, 3)])


def test_a_sweep_of_five_thousand_resting_orders_gives_five_thousand_fills() -> None:
    v = venue(accounts=(ALICE, BOB))
    v.check = False
    for i in range(5_000):
        v.sell(ALICE, 1, 100 + i % 50)
    v.check = True
    events = v.buy(BOB, 5_000, 149)
    fills = of(events, ev.TradeExecuted)
    assert len(fills) == 5_000
    prices = [t.price for t in fills]
    assert prices == sorted(prices)
    assert fills[-1].taker_status is OrderStatus.FILLED
    assert v.depth() == ([], [])
    notional = sum(100 + i % 50 for i in range(5_000))
    assert v.balance(BOB, "USD") == (10**9 - notional, 0)
    assert v.balance(ALICE, "USD") == (10**9 + notional, 0)
    assert v.balance(BOB, "BTC") == (10**9 + 5_000, 0)
    assert [t.trade_id for t in fills] == list(range(1, 5_001))
