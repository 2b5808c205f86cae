"""Cancel, cancel all, amend, client order ids, and halt/resume."""

from __future__ import annotations

from crossbook.domain import commands as cmd
from crossbook.domain import events as ev
from crossbook.domain.enums import CloseReason, OrderStatus, OrderType, Side
from crossbook.domain.rejects import Reject
from crossbook.domain.values import AccountId, Lots, OrderId, Ticks
from tests.support.factories import (
    ALICE,
    BOB,
    CAROL,
    SYMBOL,
    accepted_id,
    of,
    only_rejection,
    rejected_code,
    trades,
    venue,
)

FUNDS = 10**9


# -- cancel ----------------------------------------------------------------------------------


def test_cancel_removes_a_resting_order_and_releases_its_hold() -> None:
    v = venue()
    oid = accepted_id(v.buy(ALICE, 3, 100))
    assert v.balance(ALICE, "USD") == (FUNDS - 300, 300)
    events = v.cancel(ALICE, oid)
    [canceled] = of(events, ev.OrderCanceled)
    assert (canceled.order_id, canceled.reason, canceled.status, canceled.filled) == (
        oid,
        CloseReason.USER,
        OrderStatus.CANCELED,
        0,
    )
    assert v.balance(ALICE, "USD") == (FUNDS, 0)
    assert v.depth() == ([], [])
    [change] = of(events, ev.DepthChanged)
    assert change.bids == [(100, 0, 0)]
    assert v.ex.order(oid) is None


def test_cancel_of_a_partly_filled_order_reports_its_filled_part() -> None:
    v = venue()
    oid = accepted_id(v.sell(ALICE, 5, 100))
    v.buy(BOB, 2, 100)
    [canceled] = of(v.cancel(ALICE, oid), ev.OrderCanceled)
    assert canceled.filled == 2
    assert v.balance(ALICE, "BTC") == (FUNDS - 2, 0)


def test_cancel_of_a_filled_order_is_rejected_as_not_open() -> None:
    v = venue()
    oid = accepted_id(v.sell(ALICE, 1, 100))
    v.buy(BOB, 1, 100)
    before = v.ex.state_hash()
    rejected = only_rejection(v, v.cancel(ALICE, oid), Reject.ORDER_NOT_OPEN, before)
    assert rejected.order_id == oid


def test_a_second_cancel_of_the_same_order_is_rejected_as_not_open() -> None:
    v = venue()
    oid = accepted_id(v.sell(ALICE, 1, 100))
    v.cancel(ALICE, oid)
    before = v.ex.state_hash()
    only_rejection(v, v.cancel(ALICE, oid), Reject.ORDER_NOT_OPEN, before)


def test_cancel_of_a_never_issued_order_id_is_rejected_as_unknown() -> None:
    v = venue()
    v.sell(ALICE, 1, 100)
    before = v.ex.state_hash()
    for oid in (999, -1):
        only_rejection(v, v.cancel(ALICE, oid), Reject.UNKNOWN_ORDER, before)


def test_cancel_of_another_accounts_order_is_rejected_as_unknown() -> None:
    v = venue()
    oid = accepted_id(v.sell(ALICE, 1, 100))
    before = v.ex.state_hash()
    only_rejection(v, v.cancel(BOB, oid), Reject.UNKNOWN_ORDER, before)
    assert v.queue(Side.SELL, 100) == [oid]


def test_cancel_by_client_order_id() -> None:
    v = venue()
    oid = accepted_id(v.sell(ALICE, 1, 100, client_order_id="mine-1"))
    events = v.do(cmd.CancelOrder(AccountId(ALICE), SYMBOL, client_order_id="mine-1"))
    [canceled] = of(events, ev.OrderCanceled)
    assert (canceled.order_id, canceled.client_order_id) == (oid, "mine-1")
    before = v.ex.state_hash()
    events = v.do(cmd.CancelOrder(AccountId(ALICE), SYMBOL, client_order_id="mine-1"))
    only_rejection(v, events, Reject.UNKNOWN_ORDER, before)


def test_cancel_without_any_id_is_rejected() -> None:
    v = venue()
    before = v.ex.state_hash()
    events = v.do(cmd.CancelOrder(AccountId(ALICE), SYMBOL))
    only_rejection(v, events, Reject.INVALID_ORDER_PARAMETERS, before)


def test_cancel_all_cancels_every_open_order_of_the_account_on_the_symbol() -> None:
    v = venue()
    mine = [
        accepted_id(v.buy(ALICE, 1, 90)),
        accepted_id(v.sell(ALICE, 1, 110)),
        accepted_id(v.sell(ALICE, 1, 120, visible_qty=0)),
    ]
    v.sell(BOB, 1, 100)
    v.buy(CAROL, 1, 100)  # a last price, so a stop can wait
    mine.append(accepted_id(v.sell(ALICE, 1, type=OrderType.STOP_LOSS, stop_price=80)))
    other = accepted_id(v.buy(BOB, 1, 95))
    events = v.cancel_all(ALICE)
    canceled = of(events, ev.OrderCanceled)
    assert sorted(c.order_id for c in canceled) == sorted(mine)
    assert {c.reason for c in canceled} == {CloseReason.CANCEL_ALL}
    assert v.ex.open_orders(ALICE) == []
    assert v.balance(ALICE, "USD") == (FUNDS, 0)
    assert v.balance(ALICE, "BTC") == (FUNDS, 0)
    assert [o.order_id for o in v.ex.open_orders(BOB)] == [other]


def test_cancel_all_with_nothing_open_changes_nothing() -> None:
    v = venue()
    before = v.ex.state_hash()
    assert v.cancel_all(ALICE) == []
    assert v.ex.state_hash() == before


# -- client order ids ---------------------------------------------------------------------------


def test_a_client_order_id_in_use_by_an_open_order_is_rejected_naming_that_order() -> None:
    v = venue()
    first = accepted_id(v.buy(ALICE, 1, 90, client_order_id="abc"))
    before = v.ex.state_hash()
    events = v.buy(ALICE, 1, 91, client_order_id="abc")
    rejected = only_rejection(v, events, Reject.DUPLICATE_CLIENT_ORDER_ID, before)
    assert (rejected.order_id, rejected.client_order_id) == (first, "abc")
    assert str(first) in rejected.message


def test_the_same_client_order_id_is_fine_for_another_account() -> None:
    v = venue()
    v.buy(ALICE, 1, 90, client_order_id="abc")
    assert accepted_id(v.buy(BOB, 1, 90, client_order_id="abc"))


def test_a_client_order_id_may_be_reused_once_its_order_is_closed() -> None:
    v = venue()
    first = accepted_id(v.sell(ALICE, 1, 100, client_order_id="abc"))
    v.buy(BOB, 1, 100)  # fills it
    second = accepted_id(v.sell(ALICE, 1, 101, client_order_id="abc"))
    v.cancel(ALICE, second)
    third = accepted_id(v.sell(ALICE, 1, 102, client_order_id="abc"))
    assert len({first, second, third}) == 3
    [view] = v.ex.open_orders(ALICE)
    assert (view.order_id, view.client_order_id) == (third, "abc")


def test_a_malformed_client_order_id_is_rejected() -> None:
    v = venue()
    before = v.ex.state_hash()
    for bad in ("x" * 37, "has space", "é"):
        events = v.buy(ALICE, 1, 90, client_order_id=bad)
        only_rejection(v, events, Reject.INVALID_CLIENT_ORDER_ID, before)


# -- amend --------------------------------------------------------------------------------------


def test_an_amend_that_only_lowers_the_size_keeps_time_priority() -> None:
    v = venue()
    first = accepted_id(v.sell(ALICE, 5, 100))
    second = accepted_id(v.sell(BOB, 5, 100))
    events = v.amend(ALICE, first, qty=3)
    [amended] = of(events, ev.OrderAmended)
    assert (amended.order_id, amended.qty, amended.price, amended.kept_priority) == (
        first,
        3,
        100,
        True,
    )
    assert v.queue(Side.SELL, 100) == [first, second]
    assert v.depth() == ([], [(100, 8, 2)])
    assert v.balance(ALICE, "BTC") == (FUNDS - 3, 3)
    events = v.buy(CAROL, 3, 100)
    assert [t[0] for t in trades(events)] == [first]


def test_an_amend_that_raises_the_size_loses_time_priority() -> None:
    v = venue()
    first = accepted_id(v.sell(ALICE, 5, 100))
    second = accepted_id(v.sell(BOB, 5, 100))
    [amended] = of(v.amend(ALICE, first, qty=6), ev.OrderAmended)
    assert amended.kept_priority is False
    assert v.queue(Side.SELL, 100) == [second, first]
    assert v.balance(ALICE, "BTC") == (FUNDS - 6, 6)


def test_an_amend_that_raises_the_only_order_at_a_price_reports_that_price_once() -> None:
    v = venue()
    oid = accepted_id(v.sell(ALICE, 5, 100))
    # the level empties and a new one opens at the same price within one command
    [change] = of(v.amend(ALICE, oid, qty=7), ev.DepthChanged)
    assert (change.bids, change.asks) == ([], [(100, 7, 1)])


def test_an_amend_that_changes_the_price_loses_priority_and_may_trade() -> None:
    v = venue()
    bid = accepted_id(v.buy(BOB, 2, 99))
    ask = accepted_id(v.sell(ALICE, 5, 101))
    events = v.amend(ALICE, ask, price=99)
    kinds = [type(e) for e in events]
    assert kinds.index(ev.OrderAmended) < kinds.index(ev.TradeExecuted)
    assert trades(events) == [(bid, ask, 99, 2)]
    assert v.depth() == ([], [(99, 3, 1)])
    [view] = v.ex.open_orders(ALICE)
    assert (view.order_id, view.price, view.filled) == (ask, 99, 2)


def test_an_amend_of_a_buy_price_moves_its_hold() -> None:
    v = venue()
    oid = accepted_id(v.buy(ALICE, 2, 100))
    v.amend(ALICE, oid, price=90)
    assert v.balance(ALICE, "USD") == (FUNDS - 180, 180)
    v.amend(ALICE, oid, price=120, qty=3)
    assert v.balance(ALICE, "USD") == (FUNDS - 360, 360)


def test_an_amend_of_a_partly_filled_order_keeps_its_filled_part() -> None:
    v = venue()
    oid = accepted_id(v.sell(ALICE, 5, 100))
    v.buy(BOB, 2, 100)
    [amended] = of(v.amend(ALICE, oid, qty=4), ev.OrderAmended)
    assert (amended.qty, amended.filled) == (4, 2)
    assert v.depth() == ([], [(100, 2, 1)])
    assert v.balance(ALICE, "BTC") == (FUNDS - 4, 2)
    before = v.ex.state_hash()
    only_rejection(v, v.amend(ALICE, oid, qty=2), Reject.AMEND_BELOW_FILLED, before)


def test_an_amend_that_changes_nothing_is_rejected() -> None:
    v = venue()
    oid = accepted_id(v.sell(ALICE, 5, 100))
    before = v.ex.state_hash()
    only_rejection(v, v.amend(ALICE, oid, qty=5, price=100), Reject.AMEND_NO_CHANGE, before)
    only_rejection(v, v.amend(ALICE, oid), Reject.AMEND_NO_CHANGE, before)


def test_an_amend_after_a_full_fill_is_rejected_as_not_open() -> None:
    v = venue()
    oid = accepted_id(v.sell(ALICE, 1, 100))
    v.buy(BOB, 1, 100)
    before = v.ex.state_hash()
    only_rejection(v, v.amend(ALICE, oid, qty=3), Reject.ORDER_NOT_OPEN, before)


def test_an_amend_of_a_never_issued_order_is_rejected_as_unknown() -> None:
    v = venue()
    before = v.ex.state_hash()
    only_rejection(v, v.amend(ALICE, 12345, qty=3), Reject.UNKNOWN_ORDER, before)


def test_an_amend_of_a_waiting_stop_is_rejected() -> None:
    v = venue()
    v.sell(BOB, 1, 100)
    v.buy(CAROL, 1, 100)
    stop = accepted_id(v.sell(ALICE, 1, 90, type=OrderType.STOP_LOSS_LIMIT, stop_price=95))
    before = v.ex.state_hash()
    only_rejection(v, v.amend(ALICE, stop, qty=2), Reject.INVALID_ORDER_PARAMETERS, before)


def test_an_amend_beyond_the_funds_is_rejected_and_changes_nothing() -> None:
    v = venue()
    oid = accepted_id(v.buy(ALICE, 1, 100))
    before = v.ex.state_hash()
    events = v.amend(ALICE, oid, qty=FUNDS)
    only_rejection(v, events, Reject.INSUFFICIENT_FUNDS, before)
    assert v.queue(Side.BUY, 100) == [oid]


def test_an_amend_of_a_post_only_order_into_the_other_side_is_rejected() -> None:
    v = venue()
    v.sell(BOB, 1, 100)
    oid = accepted_id(v.buy(ALICE, 1, 90, post_only=True))
    before = v.ex.state_hash()
    only_rejection(v, v.amend(ALICE, oid, price=100), Reject.POST_ONLY_WOULD_TAKE, before)


def test_an_amend_to_a_bad_price_or_size_is_rejected() -> None:
    v = venue()
    oid = accepted_id(v.buy(ALICE, 1, 100))
    before = v.ex.state_hash()
    only_rejection(v, v.amend(ALICE, oid, price=-5), Reject.INVALID_PRICE, before)
    only_rejection(v, v.amend(ALICE, oid, price=10**7), Reject.PRICE_OUT_OF_BOUNDS, before)
    only_rejection(v, v.amend(ALICE, oid, qty=-1), Reject.INVALID_QUANTITY, before)


def test_an_amend_by_client_order_id() -> None:
    v = venue()
    oid = accepted_id(v.buy(ALICE, 1, 100, client_order_id="c1"))
    events = v.do(
        cmd.AmendOrder(AccountId(ALICE), SYMBOL, client_order_id="c1", qty=Lots(2), price=Ticks(0))
    )
    [amended] = of(events, ev.OrderAmended)
    assert (amended.order_id, amended.client_order_id, amended.qty) == (oid, "c1", 2)
    assert v.do(cmd.CancelOrder(AccountId(ALICE), SYMBOL, OrderId(oid)))


# -- halt and resume --------------------------------------------------------------------------


def test_a_halted_symbol_rejects_new_orders_and_amends_but_allows_cancels() -> None:
    v = venue()
    resting = accepted_id(v.buy(ALICE, 1, 100))
    other = accepted_id(v.buy(ALICE, 1, 99))
    events = v.do(cmd.HaltTrading(SYMBOL))
    assert of(events, ev.TradingHalted)
    assert v.ex.is_halted(SYMBOL)
    before = v.ex.state_hash()
    only_rejection(v, v.sell(BOB, 1, 100), Reject.SYMBOL_HALTED, before)
    only_rejection(v, v.amend(ALICE, resting, qty=5), Reject.SYMBOL_HALTED, before)
    assert of(v.cancel(ALICE, other), ev.OrderCanceled)
    events = v.do(cmd.ResumeTrading(SYMBOL))
    assert of(events, ev.TradingResumed)
    assert not v.ex.is_halted(SYMBOL)
    assert trades(v.sell(BOB, 1, 100)) == [(resting, resting + 2, 100, 1)]


def test_halting_an_unknown_symbol_is_rejected() -> None:
    v = venue()
    before = v.ex.state_hash()
    events = v.do(cmd.HaltTrading("NOPE-USD"))
    only_rejection(v, events, Reject.UNKNOWN_SYMBOL, before)
    events = v.do(cmd.ResumeTrading("NOPE-USD"))
    only_rejection(v, events, Reject.UNKNOWN_SYMBOL, before)
    assert rejected_code(v.do(cmd.CancelAllOrders(AccountId(ALICE), "NOPE-USD"))) == (
        Reject.UNKNOWN_SYMBOL
    )
