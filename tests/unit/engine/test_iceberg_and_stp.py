"""Iceberg orders (refill at the back of the level) and self-trade prevention modes."""

from __future__ import annotations

from crossbook.domain import events as ev
from crossbook.domain.enums import CloseReason, OrderStatus, OrderType, Side, StpMode, TimeInForce
from crossbook.domain.rejects import Reject
from tests.support.factories import (
    ALICE,
    BOB,
    CAROL,
    SYMBOL,
    Venue,
    accepted_id,
    of,
    rejected_code,
    trades,
    venue,
)

FUNDS = 10**9

# -- icebergs --------------------------------------------------------------------------------


def test_an_iceberg_shows_only_its_visible_part_in_depth() -> None:
    v = venue()
    oid = accepted_id(v.sell(ALICE, 10, 100, visible_qty=3))
    assert v.depth() == ([], [(100, 3, 1)])
    [view] = v.ex.orders_at(SYMBOL, Side.SELL, 100)
    assert (view.order_id, view.shown, view.qty) == (oid, 3, 10)
    # the whole order is held, not just the visible part
    assert v.balance(ALICE, "BTC") == (FUNDS - 10, 10)


def test_an_iceberg_refill_goes_to_the_back_of_its_level() -> None:
    v = venue()
    berg = accepted_id(v.sell(ALICE, 10, 100, visible_qty=3))
    plain = accepted_id(v.sell(BOB, 2, 100))
    assert v.depth() == ([], [(100, 5, 2)])
    events = v.buy(CAROL, 3, 100)
    taker = accepted_id(events)
    assert trades(events) == [(berg, taker, 100, 3)]
    assert v.queue(Side.SELL, 100) == [plain, berg]
    assert v.depth() == ([], [(100, 5, 2)])
    [change] = of(events, ev.DepthChanged)
    assert change.asks == [(100, 5, 2)]
    events = v.buy(CAROL, 4, 100)
    taker = accepted_id(events)
    assert trades(events) == [(plain, taker, 100, 2), (berg, taker, 100, 2)]
    [view] = v.ex.orders_at(SYMBOL, Side.SELL, 100)
    assert (view.filled, view.shown) == (5, 1)
    assert v.depth() == ([], [(100, 1, 1)])


def test_an_order_arriving_after_a_refill_queues_behind_the_refilled_part() -> None:
    v = venue()
    berg = accepted_id(v.sell(ALICE, 6, 100, visible_qty=2))
    v.buy(CAROL, 2, 100)  # refill: berg goes to the back (alone)
    later = accepted_id(v.sell(BOB, 1, 100))
    assert v.queue(Side.SELL, 100) == [berg, later]
    v.buy(CAROL, 2, 100)  # berg's second slice; it refills behind `later`
    assert v.queue(Side.SELL, 100) == [later, berg]


def test_a_large_taker_eats_an_iceberg_slice_by_slice_until_it_is_gone() -> None:
    v = venue()
    berg = accepted_id(v.sell(ALICE, 7, 100, visible_qty=3))
    events = v.buy(CAROL, 8, 100)
    taker = accepted_id(events)
    assert trades(events) == [(berg, taker, 100, 3), (berg, taker, 100, 3), (berg, taker, 100, 1)]
    fills = of(events, ev.TradeExecuted)
    assert fills[-1].maker_status is OrderStatus.FILLED
    assert v.depth() == ([(100, 1, 1)], [])
    assert v.balance(ALICE, "BTC") == (FUNDS - 7, 0)


def test_an_iceberg_with_a_bad_visible_part_is_rejected() -> None:
    v = venue()
    before = v.ex.state_hash()
    for visible in (10, 11, -1):
        events = v.sell(ALICE, 10, 100, visible_qty=visible)
        assert rejected_code(events) == Reject.INVALID_QUANTITY
    events = v.sell(ALICE, 10, 100, visible_qty=2, tif=TimeInForce.IOC)
    assert rejected_code(events) == Reject.INVALID_ORDER_PARAMETERS
    assert v.ex.state_hash() == before


def test_a_size_decrease_on_an_iceberg_shrinks_the_hidden_part_first() -> None:
    v = venue()
    berg = accepted_id(v.sell(ALICE, 10, 100, visible_qty=3))
    v.amend(ALICE, berg, qty=4)
    assert v.depth() == ([], [(100, 3, 1)])
    v.amend(ALICE, berg, qty=2)
    assert v.depth() == ([], [(100, 2, 1)])
    assert v.balance(ALICE, "BTC") == (FUNDS - 2, 2)


# -- self-trade prevention ---------------------------------------------------------------------


def _queue_with_own_order(v: Venue) -> tuple[int, int, int]:
    """Asks at 100: BOB 1, ALICE 2, CAROL 2 (in that order)."""
    return (
        accepted_id(v.sell(BOB, 1, 100)),
        accepted_id(v.sell(ALICE, 2, 100)),
        accepted_id(v.sell(CAROL, 2, 100)),
    )


def _expired(events: list[ev.Event]) -> list[tuple[int, CloseReason, OrderStatus, int]]:
    return [
        (int(e.order_id), e.reason, e.status, int(e.filled)) for e in of(events, ev.OrderExpired)
    ]


def test_without_self_trade_prevention_an_account_trades_with_itself() -> None:
    v = venue()
    bob, own, carol = _queue_with_own_order(v)
    events = v.buy(ALICE, 4, 100)
    taker = accepted_id(events)
    assert trades(events) == [(bob, taker, 100, 1), (own, taker, 100, 2), (carol, taker, 100, 1)]
    # the self-trade moves nothing: ALICE gains the 2 bought from others
    assert v.balance(ALICE, "BTC") == (FUNDS + 2, 0)
    assert v.balance(ALICE, "USD") == (FUNDS - 200, 0)


def test_expire_taker_stops_the_taker_at_its_own_order_and_keeps_the_maker() -> None:
    v = venue()
    bob, own, carol = _queue_with_own_order(v)
    events = v.buy(ALICE, 4, 100, stp=StpMode.EXPIRE_TAKER)
    taker = accepted_id(events)
    assert trades(events) == [(bob, taker, 100, 1)]
    assert _expired(events) == [(taker, CloseReason.SELF_TRADE, OrderStatus.EXPIRED_IN_MATCH, 1)]
    assert v.queue(Side.SELL, 100) == [own, carol]
    assert v.balance(ALICE, "USD") == (FUNDS - 100, 0)
    assert v.balance(ALICE, "BTC") == (FUNDS - 2 + 1, 2)


def test_expire_maker_removes_the_own_resting_order_and_the_taker_goes_on() -> None:
    v = venue()
    bob, own, carol = _queue_with_own_order(v)
    events = v.buy(ALICE, 4, 100, stp=StpMode.EXPIRE_MAKER)
    taker = accepted_id(events)
    assert trades(events) == [(bob, taker, 100, 1), (carol, taker, 100, 2)]
    assert _expired(events) == [(own, CloseReason.SELF_TRADE, OrderStatus.EXPIRED_IN_MATCH, 0)]
    assert v.depth() == ([(100, 1, 1)], [])
    assert v.balance(ALICE, "BTC") == (FUNDS + 3, 0)
    assert v.balance(ALICE, "USD") == (FUNDS - 400, 100)


def test_expire_both_removes_the_maker_and_the_takers_rest() -> None:
    v = venue()
    bob, own, carol = _queue_with_own_order(v)
    events = v.buy(ALICE, 4, 100, stp=StpMode.EXPIRE_BOTH)
    taker = accepted_id(events)
    assert trades(events) == [(bob, taker, 100, 1)]
    assert _expired(events) == [
        (own, CloseReason.SELF_TRADE, OrderStatus.EXPIRED_IN_MATCH, 0),
        (taker, CloseReason.SELF_TRADE, OrderStatus.EXPIRED_IN_MATCH, 1),
    ]
    assert v.queue(Side.SELL, 100) == [carol]
    assert v.balance(ALICE, "BTC") == (FUNDS + 1, 0)
    assert v.balance(ALICE, "USD") == (FUNDS - 100, 0)


def test_decrement_shrinks_both_orders_and_a_spent_maker_expires_in_match() -> None:
    v = venue()
    bob, own, carol = _queue_with_own_order(v)
    events = v.buy(ALICE, 4, 100, stp=StpMode.DECREMENT)
    taker = accepted_id(events)
    # 1 from BOB, 2 cancelled against ALICE's own ask, 1 from CAROL: the taker is done
    assert trades(events) == [(bob, taker, 100, 1), (carol, taker, 100, 1)]
    assert _expired(events) == [(own, CloseReason.SELF_TRADE, OrderStatus.EXPIRED_IN_MATCH, 0)]
    [amended] = of(events, ev.OrderAmended)
    assert (amended.order_id, amended.qty, amended.filled) == (taker, 2, 1)
    assert of(events, ev.TradeExecuted)[-1].taker_status is OrderStatus.FILLED
    assert v.queue(Side.SELL, 100) == [carol]
    assert v.ex.open_orders(ALICE) == []
    assert v.balance(ALICE, "BTC") == (FUNDS + 2, 0)
    assert v.balance(ALICE, "USD") == (FUNDS - 200, 0)


def test_decrement_against_a_larger_maker_expires_the_taker_and_shrinks_the_maker() -> None:
    v = venue()
    own = accepted_id(v.sell(ALICE, 5, 100))
    events = v.buy(ALICE, 2, 100, stp=StpMode.DECREMENT)
    taker = accepted_id(events)
    assert not trades(events)
    assert _expired(events) == [(taker, CloseReason.SELF_TRADE, OrderStatus.EXPIRED_IN_MATCH, 0)]
    [view] = v.ex.orders_at(SYMBOL, Side.SELL, 100)
    assert (view.order_id, view.qty) == (own, 3)
    assert v.depth() == ([], [(100, 3, 1)])
    assert v.balance(ALICE, "BTC") == (FUNDS - 3, 3)
    assert v.balance(ALICE, "USD") == (FUNDS, 0)


def test_the_makers_mode_does_not_matter_only_the_takers() -> None:
    v = venue()
    own = accepted_id(v.sell(ALICE, 1, 100, stp=StpMode.EXPIRE_BOTH))
    events = v.buy(ALICE, 1, 100)
    assert trades(events) == [(own, accepted_id(events), 100, 1)]


def test_a_fok_counts_only_what_self_trade_prevention_leaves_it() -> None:
    v = venue()
    _queue_with_own_order(v)
    before = v.ex.state_hash()
    events = v.buy(ALICE, 4, 100, tif=TimeInForce.FOK, stp=StpMode.EXPIRE_TAKER)
    assert rejected_code(events) == Reject.FOK_CANNOT_FILL
    assert v.ex.state_hash() == before
    events = v.buy(ALICE, 3, 100, tif=TimeInForce.FOK, stp=StpMode.EXPIRE_MAKER)
    assert sum(t[3] for t in trades(events)) == 3


def test_a_quote_market_buy_that_spent_its_budget_leaves_its_own_maker_alone() -> None:
    v = venue()
    bob = accepted_id(v.sell(BOB, 2, 100))
    own = accepted_id(v.sell(ALICE, 2, 100))
    events = v.buy(ALICE, 0, type=OrderType.MARKET, quote_qty=250, stp=StpMode.EXPIRE_MAKER)
    taker = accepted_id(events)
    assert trades(events) == [(bob, taker, 100, 2)]
    assert of(events, ev.TradeExecuted)[-1].taker_status is OrderStatus.FILLED
    assert not of(events, ev.OrderExpired)
    assert v.queue(Side.SELL, 100) == [own]


def test_a_market_buy_out_of_cash_leaves_its_own_maker_at_the_next_price_alone() -> None:
    v = venue()
    bob = accepted_id(v.sell(BOB, 1, 100))
    near = accepted_id(v.sell(ALICE, 1, 100))
    far = accepted_id(v.sell(ALICE, 1, 200))
    carol = accepted_id(v.sell(CAROL, 1, 200))
    # the hold is the walk for 2 lots now (100 + 100); self-trade prevention then skips `near`
    events = v.buy(ALICE, 2, type=OrderType.MARKET, stp=StpMode.EXPIRE_MAKER)
    taker = accepted_id(events)
    assert trades(events) == [(bob, taker, 100, 1)]
    assert _expired(events) == [
        (near, CloseReason.SELF_TRADE, OrderStatus.EXPIRED_IN_MATCH, 0),
        (taker, CloseReason.INSUFFICIENT_FUNDS, OrderStatus.EXPIRED, 1),
    ]
    assert v.queue(Side.SELL, 200) == [far, carol]
