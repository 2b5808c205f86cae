"""Every invalid command yields exactly one coded rejection and leaves the state as it was."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from crossbook.domain import commands as cmd
from crossbook.domain.enums import OrderType, Side, StpMode, TimeInForce
from crossbook.domain.instruments import Instrument
from crossbook.domain.rejects import Reject
from crossbook.domain.values import AccountId, Lots, OrderId, Ticks, Units
from tests.support.factories import (
    ALICE,
    BOB,
    BTC,
    CAROL,
    SYMBOL,
    USD,
    Venue,
    accepted_id,
    only_rejection,
    venue,
)

BOUNDED = Instrument.create(
    SYMBOL, BTC, USD, "1", "1", min_price="10", max_price="1000", max_qty="1000",
    min_notional="100",
)  # fmt: skip
MARKET, STOP = OrderType.MARKET, OrderType.STOP_LOSS


def _busy_venue() -> tuple[Venue, dict[str, int]]:
    """A venue with resting orders on both sides, a last price, a waiting stop, a filled order."""
    v = venue(instrument=BOUNDED, funds=100_000)
    ids = {
        "filled": accepted_id(v.sell(ALICE, 1, 100)),
        "bid": accepted_id(v.buy(ALICE, 5, 95, client_order_id="bid-1")),
        "ask": accepted_id(v.sell(BOB, 5, 105)),
        "ask2": accepted_id(v.sell(CAROL, 1, 110)),
    }
    v.buy(CAROL, 1, 100)  # fills `filled`; last price 100
    ids["stop"] = accepted_id(v.sell(CAROL, 1, type=STOP, stop_price=90))
    v.do(cmd.Withdraw(AccountId(BOB), "BTC", Units(100_000 - 15), "leave-10-free"))
    return v, ids


def _place(
    account: int = BOB, side: Side = Side.BUY, qty: int = 1, price: int = 100, **kw: object
) -> cmd.PlaceOrder:
    return cmd.PlaceOrder(
        AccountId(account), SYMBOL, side, qty=Lots(qty), price=Ticks(price), **kw  # type: ignore[arg-type]
    )


Case = Callable[[dict[str, int]], cmd.Command]
CASES: list[tuple[str, Case, Reject]] = [
    ("unknown symbol", lambda _: cmd.PlaceOrder(
        AccountId(BOB), "ETH-USD", Side.BUY, OrderType.LIMIT, Lots(1), Ticks(100)
    ), Reject.UNKNOWN_SYMBOL),
    ("unknown account", lambda _: _place(account=99, type=OrderType.LIMIT), Reject.UNKNOWN_ACCOUNT),
    ("zero size", lambda _: _place(qty=0, type=OrderType.LIMIT), Reject.INVALID_QUANTITY),
    ("negative size", lambda _: _place(qty=-3, type=OrderType.LIMIT), Reject.INVALID_QUANTITY),
    ("size above max", lambda _: _place(qty=1001, type=OrderType.LIMIT),
     Reject.QUANTITY_OUT_OF_BOUNDS),
    ("zero price", lambda _: _place(price=0, type=OrderType.LIMIT), Reject.INVALID_PRICE),
    ("negative price", lambda _: _place(price=-1, type=OrderType.LIMIT), Reject.INVALID_PRICE),
    ("price below bounds", lambda _: _place(price=9, qty=20, type=OrderType.LIMIT),
     Reject.PRICE_OUT_OF_BOUNDS),
    ("price above bounds", lambda _: _place(price=1001, type=OrderType.LIMIT),
     Reject.PRICE_OUT_OF_BOUNDS),
    ("below min notional", lambda _: _place(price=99, type=OrderType.LIMIT),
     Reject.BELOW_MIN_NOTIONAL),
    ("quote amount below min notional",
     lambda _: _place(qty=0, price=0, type=MARKET, quote_qty=Units(99)), Reject.BELOW_MIN_NOTIONAL),
    ("insufficient funds", lambda _: _place(qty=101, price=1000, type=OrderType.LIMIT),
     Reject.INSUFFICIENT_FUNDS),
    ("insufficient base", lambda _: _place(side=Side.SELL, qty=11, price=200,
                                           type=OrderType.LIMIT), Reject.INSUFFICIENT_FUNDS),
    ("post-only would take", lambda _: _place(price=105, type=OrderType.LIMIT, post_only=True),
     Reject.POST_ONLY_WOULD_TAKE),
    ("FOK cannot fill", lambda _: _place(qty=7, price=110, type=OrderType.LIMIT,
                                         tif=TimeInForce.FOK), Reject.FOK_CANNOT_FILL),
    ("FOK blocked by self-trade prevention",
     lambda _: _place(account=BOB, qty=1, price=106, type=OrderType.LIMIT, tif=TimeInForce.FOK,
                      stp=StpMode.EXPIRE_TAKER), Reject.FOK_CANNOT_FILL),
    ("market with a price", lambda _: _place(type=MARKET), Reject.INVALID_ORDER_PARAMETERS),
    ("limit with a stop price", lambda _: _place(type=OrderType.LIMIT, stop_price=Ticks(120)),
     Reject.INVALID_ORDER_PARAMETERS),
    ("stop without a stop price", lambda _: _place(price=0, type=STOP),
     Reject.INVALID_PRICE),
    ("stop would trigger at once", lambda _: _place(price=0, type=STOP, stop_price=Ticks(100)),
     Reject.STOP_WOULD_TRIGGER_IMMEDIATELY),
    ("quote amount on a sell", lambda _: _place(side=Side.SELL, qty=0, price=0, type=MARKET,
                                                quote_qty=Units(500)),
     Reject.INVALID_ORDER_PARAMETERS),
    ("quote amount with a size", lambda _: _place(qty=1, price=0, type=MARKET,
                                                  quote_qty=Units(500)),
     Reject.INVALID_ORDER_PARAMETERS),
    ("GTD in the past", lambda _: _place(type=OrderType.LIMIT, tif=TimeInForce.GTD,
                                         expire_ts=1_000), Reject.INVALID_EXPIRE_TIME),
    ("expiry without GTD", lambda _: _place(type=OrderType.LIMIT, expire_ts=9_000),
     Reject.INVALID_ORDER_PARAMETERS),
    ("GTD market", lambda _: _place(price=0, type=MARKET, tif=TimeInForce.GTD, expire_ts=9_000),
     Reject.INVALID_ORDER_PARAMETERS),
    ("post-only IOC", lambda _: _place(qty=2, price=90, type=OrderType.LIMIT, tif=TimeInForce.IOC,
                                       post_only=True), Reject.INVALID_ORDER_PARAMETERS),
    ("duplicate client order id", lambda _: _place(account=ALICE, qty=2, price=90,
                                                   type=OrderType.LIMIT, client_order_id="bid-1"),
     Reject.DUPLICATE_CLIENT_ORDER_ID),
    ("cancel of an unknown symbol", lambda ids: cmd.CancelOrder(
        AccountId(ALICE), "ETH-USD", OrderId(ids["bid"])), Reject.UNKNOWN_SYMBOL),
    ("cancel by an unknown account", lambda ids: cmd.CancelOrder(
        AccountId(99), SYMBOL, OrderId(ids["bid"])), Reject.UNKNOWN_ACCOUNT),
    ("cancel of a never issued order", lambda _: cmd.CancelOrder(
        AccountId(ALICE), SYMBOL, OrderId(10_000)), Reject.UNKNOWN_ORDER),
    ("stale cancel of a filled order", lambda ids: cmd.CancelOrder(
        AccountId(ALICE), SYMBOL, OrderId(ids["filled"])), Reject.ORDER_NOT_OPEN),
    ("stale amend of a filled order", lambda ids: cmd.AmendOrder(
        AccountId(ALICE), SYMBOL, OrderId(ids["filled"]), qty=Lots(3)), Reject.ORDER_NOT_OPEN),
    ("amend below min notional", lambda ids: cmd.AmendOrder(
        AccountId(ALICE), SYMBOL, OrderId(ids["bid"]), qty=Lots(1)), Reject.BELOW_MIN_NOTIONAL),
    ("cancel all of an unknown account", lambda _: cmd.CancelAllOrders(AccountId(99), SYMBOL),
     Reject.UNKNOWN_ACCOUNT),
]  # fmt: skip


@pytest.mark.parametrize(("case", "build", "code"), CASES, ids=[c[0] for c in CASES])
def test_an_invalid_command_is_rejected_with_its_code_and_changes_nothing(
    case: str, build: Case, code: Reject
) -> None:
    v, ids = _busy_venue()
    before = v.ex.state_hash()
    only_rejection(v, v.do(build(ids)), code, before)


def test_a_market_order_into_an_empty_side_is_rejected_and_changes_nothing() -> None:
    v = venue(instrument=BOUNDED)
    v.buy(ALICE, 5, 95)
    before = v.ex.state_hash()
    only_rejection(v, v.buy(BOB, 1, type=MARKET), Reject.NO_LIQUIDITY, before)
    events = v.buy(BOB, 0, type=MARKET, quote_qty=500)
    only_rejection(v, events, Reject.NO_LIQUIDITY, before)


def test_every_order_command_on_a_halted_symbol_is_rejected_and_changes_nothing() -> None:
    v, ids = _busy_venue()
    v.do(cmd.HaltTrading(SYMBOL))
    before = v.ex.state_hash()
    only_rejection(v, v.buy(BOB, 1, 100), Reject.SYMBOL_HALTED, before)
    only_rejection(v, v.sell(BOB, 1, type=MARKET), Reject.SYMBOL_HALTED, before)
    only_rejection(v, v.amend(ALICE, ids["bid"], qty=9), Reject.SYMBOL_HALTED, before)


def test_a_rejection_does_not_consume_an_order_id() -> None:
    v, _ = _busy_venue()
    v.buy(BOB, 0, 100)
    first = accepted_id(v.buy(BOB, 1, 100))
    v.buy(BOB, -1, 100)
    assert accepted_id(v.buy(BOB, 1, 100)) == first + 1


def test_admin_commands_with_bad_input_are_rejected_and_change_nothing() -> None:
    v, _ = _busy_venue()
    before = v.ex.state_hash()
    only_rejection(v, v.do(cmd.AddAsset(BTC)), Reject.ASSET_EXISTS, before)
    only_rejection(v, v.do(cmd.AddInstrument(BOUNDED)), Reject.SYMBOL_EXISTS, before)
    orphan = Instrument.create("ETH-USD", BTC.__class__("ETH", 0), USD, "1", "1")
    only_rejection(v, v.do(cmd.AddInstrument(orphan)), Reject.UNKNOWN_ASSET, before)
