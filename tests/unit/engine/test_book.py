"""`Book.place` and `Book.cancel`: the book's own order entry, without accounts or fees."""

from __future__ import annotations

import pytest

from crossbook.domain.enums import OrderType, Side, StpMode, TimeInForce
from crossbook.engine.book import Book, Reporter
from crossbook.engine.order import Order

# The base `Reporter` ignores the steps (a compiled class cannot be subclassed here): what
# happened is read from the orders and the depth.


def order(order_id: int, side: Side, qty: int, price: int, account: int = 1) -> Order:
    typ = OrderType.LIMIT if price else OrderType.MARKET
    return Order(
        order_id, account, "X", side, typ, qty, price, TimeInForce.GTC, 0, 0, 0, False, 0,
        StpMode.NONE, "",
    )


def test_place_rests_what_is_left_of_a_limit_order_and_matches_in_price_time_order() -> None:
    book, steps = Book("X"), Reporter()
    makers = [order(1, Side.SELL, 5, 101), order(2, Side.SELL, 5, 100), order(3, Side.SELL, 5, 100)]
    assert all(book.place(o, steps) for o in makers)
    taker = order(4, Side.BUY, 8, 101)
    assert book.place(taker, steps) is False
    assert [o.filled for o in makers] == [0, 5, 3]  # the better price first, then time
    assert taker.filled == 8
    assert not taker.live
    assert book.depth(Side.SELL, 5) == [(100, 2, 1), (101, 5, 1)]
    rester = order(5, Side.BUY, 10, 100)
    assert book.place(rester, steps)
    assert rester.filled == 2
    assert rester.live
    assert rester.level is not None
    assert book.depth(Side.BUY, 5) == [(100, 8, 1)]
    assert book.depth(Side.SELL, 5) == [(101, 5, 1)]


def test_a_market_order_never_rests() -> None:
    book, steps = Book("X"), Reporter()
    book.place(order(1, Side.BUY, 2, 99), steps)
    market = order(2, Side.SELL, 5, 0)
    assert book.place(market, steps) is False
    assert market.filled == 2
    assert book.best_bid() is None


def test_cancel_takes_out_only_an_order_that_still_rests() -> None:
    book, steps = Book("X"), Reporter()
    maker = order(1, Side.BUY, 2, 99)
    book.place(maker, steps)
    assert book.cancel(maker)
    assert not maker.live
    assert maker.level is None
    assert book.best_bid() is None
    assert not book.cancel(maker)
    filled = order(2, Side.BUY, 2, 99)
    book.place(filled, steps)
    book.place(order(3, Side.SELL, 2, 99), steps)
    assert not book.cancel(filled)


def test_place_refuses_an_order_not_sized_in_lots() -> None:
    with pytest.raises(ValueError, match="not sized in lots"):
        Book("X").place(order(1, Side.BUY, 0, 0), Reporter())
