"""Market orders: buy by base size, buy by quote amount, sell; holds and what is left."""

from __future__ import annotations

import random

from crossbook.domain import events as ev
from crossbook.domain.enums import CloseReason, OrderStatus, OrderType
from crossbook.domain.rejects import Reject
from tests.support.factories import ALICE, BOB, accepted_id, of, rejected_code, trades, venue

MARKET = OrderType.MARKET
FUNDS = 10**9


def test_a_market_buy_by_base_size_walks_the_asks_until_filled() -> None:
    v = venue()
    a = accepted_id(v.sell(ALICE, 2, 100))
    b = accepted_id(v.sell(ALICE, 5, 101))
    events = v.buy(BOB, 4, type=MARKET)
    taker = accepted_id(events)
    assert trades(events) == [(a, taker, 100, 2), (b, taker, 101, 2)]
    assert of(events, ev.TradeExecuted)[-1].taker_status is OrderStatus.FILLED
    assert not of(events, ev.OrderExpired)
    assert v.depth() == ([], [(101, 3, 1)])
    assert v.balance(BOB, "USD") == (FUNDS - 402, 0)
    assert v.balance(BOB, "BTC") == (FUNDS + 4, 0)


def test_a_market_buy_larger_than_the_book_takes_everything_and_expires_the_rest() -> None:
    v = venue()
    v.sell(ALICE, 2, 100)
    events = v.buy(BOB, 5, type=MARKET)
    assert sum(t[3] for t in trades(events)) == 2
    [expired] = of(events, ev.OrderExpired)
    assert (expired.filled, expired.status, expired.reason) == (
        2,
        OrderStatus.EXPIRED,
        CloseReason.NO_LIQUIDITY,
    )
    assert v.balance(BOB, "USD") == (FUNDS - 200, 0)


def test_a_market_buy_by_base_size_holds_the_cost_of_walking_the_book_plus_taker_fee() -> None:
    v = venue(taker_bps=50)
    v.sell(ALICE, 2, 100)
    v.sell(ALICE, 5, 101)
    v.do(_withdraw_all_but(BOB, "USD", 408))
    # cost 200 + 202 = 402, fee 2.01 reserved as 3: a 405 hold fits, and settles at 402 + 2
    events = v.buy(BOB, 4, type=MARKET)
    fills = of(events, ev.TradeExecuted)
    assert [(t.price, t.qty, t.taker_fee) for t in fills] == [(100, 2, 1), (101, 2, 1)]
    assert v.balance(BOB, "USD") == (408 - 404, 0)
    assert v.ex.fees_collected["USD"] == 2


def test_a_market_buy_by_base_size_that_cannot_afford_the_walk_is_rejected() -> None:
    v = venue(taker_bps=50)
    v.sell(ALICE, 2, 100)
    v.sell(ALICE, 5, 101)
    v.do(_withdraw_all_but(BOB, "USD", 404))
    before = v.ex.state_hash()
    events = v.buy(BOB, 4, type=MARKET)
    assert rejected_code(events) == Reject.INSUFFICIENT_FUNDS
    assert v.ex.state_hash() == before


def test_a_market_buy_by_quote_amount_spends_at_most_that_amount() -> None:
    v = venue()
    a = accepted_id(v.sell(ALICE, 2, 100))
    b = accepted_id(v.sell(ALICE, 5, 101))
    events = v.buy(BOB, 0, type=MARKET, quote_qty=402)
    taker = accepted_id(events)
    assert trades(events) == [(a, taker, 100, 2), (b, taker, 101, 2)]
    assert v.balance(BOB, "USD") == (FUNDS - 402, 0)
    assert v.ex.open_orders(BOB) == []
    assert v.depth() == ([], [(101, 3, 1)])


def test_a_quote_market_buy_that_spends_its_budget_reports_itself_filled() -> None:
    v = venue()
    v.sell(ALICE, 2, 100)
    v.sell(ALICE, 5, 101)
    # 250 buys 2 at 100; the 50 left cannot buy a lot at any price still on the book
    events = v.buy(BOB, 0, type=MARKET, quote_qty=250)
    fills = of(events, ev.TradeExecuted)
    assert [(t.price, t.qty) for t in fills] == [(100, 2)]
    assert fills[-1].taker_status is OrderStatus.FILLED
    assert not of(events, ev.OrderExpired)
    assert v.ex.open_orders(BOB) == []
    assert v.balance(BOB, "USD") == (FUNDS - 200, 0)


def test_a_quote_market_buy_whose_rest_does_not_reach_the_next_price_expires() -> None:
    v = venue()
    v.sell(ALICE, 2, 100)
    v.sell(ALICE, 5, 200)
    # 350 buys 2 at 100; the 150 left would buy a lot at 100 but not at 200
    events = v.buy(BOB, 0, type=MARKET, quote_qty=350)
    assert of(events, ev.TradeExecuted)[-1].taker_status is OrderStatus.PARTIALLY_FILLED
    [expired] = of(events, ev.OrderExpired)
    assert (expired.filled, expired.status, expired.reason) == (
        2,
        OrderStatus.EXPIRED,
        CloseReason.INSUFFICIENT_FUNDS,
    )
    assert v.ex.open_orders(BOB) == []
    assert v.balance(BOB, "USD") == (FUNDS - 200, 0)


def test_a_quote_market_buy_that_empties_the_book_with_its_exact_budget_is_filled() -> None:
    v = venue()
    v.sell(ALICE, 2, 100)
    events = v.buy(BOB, 0, type=MARKET, quote_qty=200)
    assert of(events, ev.TradeExecuted)[-1].taker_status is OrderStatus.FILLED
    assert not of(events, ev.OrderExpired)


def test_a_quote_market_buy_left_with_money_when_the_book_runs_out_expires() -> None:
    v = venue()
    v.sell(ALICE, 2, 100)
    events = v.buy(BOB, 0, type=MARKET, quote_qty=500)
    assert of(events, ev.TradeExecuted)[-1].taker_status is OrderStatus.PARTIALLY_FILLED
    [expired] = of(events, ev.OrderExpired)
    assert (expired.filled, expired.reason) == (2, CloseReason.NO_LIQUIDITY)
    assert v.balance(BOB, "USD") == (FUNDS - 200, 0)


def test_a_quote_market_buy_holds_its_amount_plus_taker_fee_and_pays_fees_on_top() -> None:
    v = venue(taker_bps=100)
    v.sell(ALICE, 10, 100)
    v.do(_withdraw_all_but(BOB, "USD", 303))
    events = v.buy(BOB, 0, type=MARKET, quote_qty=300)
    [fill] = of(events, ev.TradeExecuted)
    assert (fill.qty, fill.taker_fee, fill.taker_status) == (3, 3, OrderStatus.FILLED)
    assert v.balance(BOB, "USD") == (0, 0)
    assert v.balance(BOB, "BTC") == (FUNDS + 3, 0)


def test_a_market_sell_walks_the_bids_best_first() -> None:
    v = venue()
    low = accepted_id(v.buy(ALICE, 3, 99))
    high = accepted_id(v.buy(ALICE, 1, 100))
    events = v.sell(BOB, 3, type=MARKET)
    taker = accepted_id(events)
    assert trades(events) == [(high, taker, 100, 1), (low, taker, 99, 2)]
    assert v.depth() == ([(99, 1, 1)], [])
    assert v.balance(BOB, "BTC") == (FUNDS - 3, 0)
    assert v.balance(BOB, "USD") == (FUNDS + 298, 0)


def test_a_market_order_into_an_empty_side_is_rejected_for_no_liquidity() -> None:
    v = venue()
    v.buy(ALICE, 3, 99)  # only bids: a market buy has nothing to take
    before = v.ex.state_hash()
    events = v.buy(BOB, 1, type=MARKET)
    assert rejected_code(events) == Reject.NO_LIQUIDITY
    assert len(events) == 1
    assert v.ex.state_hash() == before


def test_a_market_order_never_rests() -> None:
    v = venue()
    v.buy(ALICE, 1, 99)
    v.sell(BOB, 5, type=MARKET)
    assert v.depth() == ([], [])
    assert v.ex.open_orders(BOB) == []
    assert v.balance(BOB, "BTC") == (FUNDS - 1, 0)


def test_a_market_buy_by_quote_always_ends_in_its_own_command() -> None:
    """Whatever the budget against whatever book, the order's last event of the command gives
    it a closed status (the last trade FILLED, or an expiry): reports and user streams need
    no inference to close it."""
    rng = random.Random(5)
    checked = 0
    for _ in range(60):
        v = venue()
        for _ in range(rng.randint(1, 6)):
            v.sell(BOB, rng.randint(1, 5), rng.randint(95, 110))
        for _ in range(5):
            events = v.buy(ALICE, 0, type=MARKET, quote_qty=rng.randint(1, 3_000))
            placed = of(events, ev.OrderAccepted)
            if not placed:
                continue
            order_id, final = placed[0].order_id, None
            for e in events:
                if isinstance(e, ev.TradeExecuted) and e.taker_order_id == order_id:
                    final = e.taker_status
                elif isinstance(e, ev.OrderExpired) and e.order_id == order_id:
                    final = e.status
            assert final is not None
            assert not final.is_open
            checked += 1
    assert checked > 50


def _withdraw_all_but(account: int, asset: str, keep: int):  # type: ignore[no-untyped-def]
    from crossbook.domain.commands import Withdraw
    from crossbook.domain.values import AccountId, Units

    return Withdraw(AccountId(account), asset, Units(FUNDS - keep), f"keep-{account}-{keep}")
