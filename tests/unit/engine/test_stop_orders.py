"""Stop-loss and take-profit orders: triggers on the last trade price, cascades, holds."""

from __future__ import annotations

from crossbook.domain import events as ev
from crossbook.domain.enums import CloseReason, OrderStatus, OrderType, Side
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
STOP, STOP_LIMIT = OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT
TP, TP_LIMIT = OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT


def _trade_at(v: Venue, price: int, qty: int = 1) -> None:
    """Print a trade at `price` between ALICE (maker) and BOB (taker)."""
    v.sell(ALICE, qty, price)
    assert trades(v.buy(BOB, qty, price))
    assert v.ex.last_price(SYMBOL) == price


def _triggered(events: list[ev.Event]) -> list[tuple[int, int]]:
    return [(int(e.order_id), int(e.last_price)) for e in of(events, ev.OrderTriggered)]


def test_a_stop_order_waits_off_the_book_until_triggered() -> None:
    v = venue()
    _trade_at(v, 100)
    events = v.buy(CAROL, 2, type=STOP, stop_price=105)
    [accepted] = of(events, ev.OrderAccepted)
    assert accepted.working is False
    assert v.depth() == ([], [])
    [view] = v.ex.open_orders(CAROL)
    assert (view.working, view.status) == (False, OrderStatus.NEW)
    # the hold is the stop price times the size
    assert v.balance(CAROL, "USD") == (FUNDS - 210, 210)


def test_a_buy_stop_loss_market_triggers_when_the_price_rises_to_its_stop() -> None:
    v = venue()
    _trade_at(v, 100)
    stop = accepted_id(v.buy(CAROL, 2, type=STOP, stop_price=105))
    v.sell(ALICE, 1, 104)
    v.sell(ALICE, 1, 105)
    resting = accepted_id(v.sell(ALICE, 5, 105))
    events = v.buy(BOB, 1, 104)
    assert not _triggered(events)
    events = v.buy(BOB, 1, 105)
    assert _triggered(events) == [(stop, 105)]
    assert trades(events)[-1] == (resting, stop, 105, 2)
    assert of(events, ev.TradeExecuted)[-1].taker_status is OrderStatus.FILLED
    assert v.ex.open_orders(CAROL) == []
    assert v.balance(CAROL, "USD") == (FUNDS - 210, 0)


def test_a_sell_stop_loss_market_triggers_when_the_price_falls_to_its_stop() -> None:
    v = venue()
    _trade_at(v, 100)
    stop = accepted_id(v.sell(CAROL, 2, type=STOP, stop_price=95))
    bid = accepted_id(v.buy(BOB, 5, 94))
    v.buy(BOB, 1, 95)
    events = v.sell(ALICE, 1, 95)
    assert _triggered(events) == [(stop, 95)]
    assert trades(events)[-1] == (bid, stop, 94, 2)
    assert v.balance(CAROL, "BTC") == (FUNDS - 2, 0)
    assert v.balance(CAROL, "USD") == (FUNDS + 188, 0)


def test_a_buy_take_profit_market_triggers_when_the_price_falls_to_its_stop() -> None:
    v = venue()
    _trade_at(v, 100)
    tp = accepted_id(v.buy(CAROL, 1, type=TP, stop_price=90))
    v.sell(ALICE, 3, 90)
    events = v.buy(BOB, 1, 90)
    assert _triggered(events) == [(tp, 90)]
    assert trades(events)[-1][1:] == (tp, 90, 1)


def test_a_sell_take_profit_market_triggers_when_the_price_rises_to_its_stop() -> None:
    v = venue()
    _trade_at(v, 100)
    tp = accepted_id(v.sell(CAROL, 1, type=TP, stop_price=110))
    v.buy(BOB, 3, 109)
    v.sell(ALICE, 1, 110)
    events = v.buy(BOB, 1, 110)
    assert _triggered(events) == [(tp, 110)]
    assert trades(events)[-1][1:] == (tp, 109, 1)


def test_a_buy_stop_loss_limit_rests_at_its_limit_after_triggering() -> None:
    v = venue()
    _trade_at(v, 100)
    stop = accepted_id(v.buy(CAROL, 3, 106, type=STOP_LIMIT, stop_price=105))
    # the limit-priced hold is the limit price times the size
    assert v.balance(CAROL, "USD") == (FUNDS - 318, 318)
    v.sell(ALICE, 1, 105)
    v.sell(ALICE, 1, 106)
    v.sell(ALICE, 1, 107)
    events = v.buy(BOB, 1, 105)
    assert _triggered(events) == [(stop, 105)]
    taker = accepted_id(events)
    assert [t[1:] for t in trades(events)] == [(taker, 105, 1), (stop, 106, 1)]
    assert v.depth() == ([(106, 2, 1)], [(107, 1, 1)])
    assert v.balance(CAROL, "USD") == (FUNDS - 318, 212)


def test_a_sell_stop_loss_limit_triggers_and_sells_no_lower_than_its_limit() -> None:
    v = venue()
    _trade_at(v, 100)
    stop = accepted_id(v.sell(CAROL, 3, 94, type=STOP_LIMIT, stop_price=95))
    v.buy(BOB, 1, 95)
    v.buy(BOB, 1, 93)
    events = v.sell(ALICE, 1, 95)
    assert _triggered(events) == [(stop, 95)]
    assert v.depth() == ([(93, 1, 1)], [(94, 3, 1)])


def test_take_profit_limits_on_both_sides_trigger_and_trade_at_their_limit() -> None:
    v = venue()
    _trade_at(v, 100)
    buy_tp = accepted_id(v.buy(CAROL, 1, 91, type=TP_LIMIT, stop_price=90))
    sell_tp = accepted_id(v.sell(CAROL, 1, 109, type=TP_LIMIT, stop_price=110))
    v.sell(ALICE, 2, 90)
    events = v.buy(BOB, 1, 90)
    assert _triggered(events) == [(buy_tp, 90)]
    assert trades(events)[-1][1:] == (buy_tp, 90, 1)
    v.buy(BOB, 1, 110)
    events = v.sell(ALICE, 1, 110)
    assert _triggered(events) == [(sell_tp, 110)]
    assert v.depth() == ([], [(109, 1, 1)])


def test_a_stop_that_would_trigger_at_once_is_rejected_and_changes_nothing() -> None:
    v = venue()
    _trade_at(v, 100)
    before = v.ex.state_hash()
    cases = [
        (Side.BUY, STOP, 100),
        (Side.BUY, STOP, 99),
        (Side.SELL, STOP, 100),
        (Side.SELL, STOP, 101),
        (Side.BUY, TP, 101),
        (Side.SELL, TP, 99),
    ]
    for side, typ, stop in cases:
        events = v.place(CAROL, side, 1, type=typ, stop_price=stop)
        assert rejected_code(events) == Reject.STOP_WOULD_TRIGGER_IMMEDIATELY, (side, typ, stop)
        assert len(events) == 1
        assert v.ex.state_hash() == before


def test_a_stop_before_any_trade_is_accepted() -> None:
    v = venue()
    assert accepted_id(v.buy(CAROL, 1, type=STOP, stop_price=100))
    assert accepted_id(v.sell(CAROL, 1, type=STOP, stop_price=100))


def test_a_stop_cascade_triggers_each_stop_on_the_previous_ones_trades() -> None:
    v = venue()
    _trade_at(v, 100)
    first = accepted_id(v.sell(CAROL, 1, type=STOP, stop_price=99))
    second = accepted_id(v.sell(CAROL, 1, type=STOP, stop_price=98))
    third = accepted_id(v.sell(CAROL, 1, type=STOP, stop_price=96))
    b99 = accepted_id(v.buy(BOB, 1, 99))
    b98 = accepted_id(v.buy(BOB, 1, 98))
    b97 = accepted_id(v.buy(BOB, 2, 97))
    events = v.sell(ALICE, 1, 99)
    # 99 triggers `first`, whose trade at 98 triggers `second`, whose trade at 97 stops there
    assert _triggered(events) == [(first, 99), (second, 98)]
    assert trades(events)[1:] == [(b98, first, 98, 1), (b97, second, 97, 1)]
    assert trades(events)[0][0] == b99
    assert [o.order_id for o in v.ex.open_orders(CAROL)] == [third]
    assert v.depth() == ([(97, 1, 1)], [])
    assert v.ex.last_price(SYMBOL) == 97


def test_stops_reached_together_trigger_nearest_first_then_by_order_id() -> None:
    v = venue()
    _trade_at(v, 100)
    # stop-limit buys priced at 110 hold enough to take the asks at 104
    far = accepted_id(v.buy(CAROL, 1, 110, type=STOP_LIMIT, stop_price=103))
    near_late = accepted_id(v.buy(CAROL, 1, 110, type=STOP_LIMIT, stop_price=102))
    near_early = accepted_id(v.buy(ALICE, 1, 110, type=STOP_LIMIT, stop_price=101))
    near_again = accepted_id(v.buy(ALICE, 1, 110, type=STOP_LIMIT, stop_price=101))
    v.sell(BOB, 10, 104)
    v.sell(BOB, 1, 103)
    events = v.buy(ALICE, 1, 103)
    assert _triggered(events) == [
        (near_early, 103),
        (near_again, 104),
        (near_late, 104),
        (far, 104),
    ]
    assert [t[1] for t in trades(events)[1:]] == [near_early, near_again, near_late, far]


def test_a_falling_price_triggers_the_highest_sell_stop_first() -> None:
    v = venue()
    _trade_at(v, 100)
    low = accepted_id(v.sell(CAROL, 1, 80, type=STOP_LIMIT, stop_price=97))
    high = accepted_id(v.sell(CAROL, 1, 80, type=STOP_LIMIT, stop_price=99))
    v.buy(BOB, 10, 90)
    v.buy(BOB, 1, 95)
    events = v.sell(ALICE, 1, 95)
    assert _triggered(events) == [(high, 95), (low, 90)]


def test_a_triggered_stop_market_with_nothing_to_take_expires() -> None:
    v = venue()
    _trade_at(v, 100)
    stop = accepted_id(v.buy(CAROL, 1, type=STOP, stop_price=101))
    v.sell(ALICE, 1, 101)
    events = v.buy(BOB, 1, 101)
    assert _triggered(events) == [(stop, 101)]
    [expired] = of(events, ev.OrderExpired)
    assert (expired.order_id, expired.reason) == (stop, CloseReason.NO_LIQUIDITY)
    assert v.balance(CAROL, "USD") == (FUNDS, 0)


def test_a_triggered_buy_stop_market_spends_no_more_than_its_hold() -> None:
    v = venue()
    _trade_at(v, 100)
    stop = accepted_id(v.buy(CAROL, 3, type=STOP, stop_price=101))
    v.do(_withdraw(CAROL, "USD", FUNDS - 303))  # only the hold remains
    v.sell(ALICE, 1, 101)
    v.sell(ALICE, 1, 102)
    v.sell(ALICE, 5, 150)
    events = v.buy(BOB, 1, 101)
    assert _triggered(events) == [(stop, 101)]
    fills = [t for t in trades(events) if t[1] == stop]
    # 303 buys 102 and then 150; the 51 left cannot buy a third lot at 150
    assert [t[2:] for t in fills] == [(102, 1), (150, 1)]
    [expired] = of(events, ev.OrderExpired)
    assert (expired.filled, expired.reason) == (2, CloseReason.INSUFFICIENT_FUNDS)
    assert v.balance(CAROL, "USD") == (303 - 252, 0)


def test_a_triggered_buy_stop_market_gapped_past_its_hold_expires_unfilled() -> None:
    v = venue()
    _trade_at(v, 100)
    stop = accepted_id(v.buy(CAROL, 1, type=STOP, stop_price=101))
    v.sell(ALICE, 1, 101)
    v.sell(ALICE, 1, 120)
    events = v.buy(BOB, 1, 101)
    assert _triggered(events) == [(stop, 101)]
    [expired] = of(events, ev.OrderExpired)
    assert (expired.order_id, expired.filled, expired.reason) == (
        stop,
        0,
        CloseReason.INSUFFICIENT_FUNDS,
    )
    assert v.balance(CAROL, "USD") == (FUNDS, 0)
    assert v.depth() == ([], [(120, 1, 1)])


def test_canceling_a_waiting_stop_releases_its_hold_and_it_never_triggers() -> None:
    v = venue()
    _trade_at(v, 100)
    stop = accepted_id(v.sell(CAROL, 2, type=STOP, stop_price=99))
    assert v.balance(CAROL, "BTC") == (FUNDS - 2, 2)
    [canceled] = of(v.cancel(CAROL, stop), ev.OrderCanceled)
    assert canceled.status is OrderStatus.CANCELED
    assert v.balance(CAROL, "BTC") == (FUNDS, 0)
    v.buy(BOB, 1, 99)
    assert not _triggered(v.sell(ALICE, 1, 99))


def _withdraw(account: int, asset: str, amount: int):  # type: ignore[no-untyped-def]
    from crossbook.domain.commands import Withdraw
    from crossbook.domain.values import AccountId, Units

    return Withdraw(AccountId(account), asset, Units(amount), f"w-{account}-{amount}")
