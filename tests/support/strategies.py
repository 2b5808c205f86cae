"""Hypothesis strategies: random command streams for a small, busy venue.

A stream is a list of `(seq, ts, command)`: a setup (assets, one or two instruments, 2-4
funded accounts) followed by trading. Prices stay in a narrow band around each symbol's mid
so orders cross often. Cancels and amends name order ids up to a little past the number of
orders placed so far, so they hit open, closed and never-issued orders; client order ids
come from a tiny pool, so duplicates happen. A few commands are bad on purpose (zero or
negative size, prices off the instrument's bounds, unknown accounts and symbols, more than
the account holds, repeated transaction ids).

The stream length follows `CROSSBOOK_HYPOTHESIS_PROFILE` (longer streams for `long`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from hypothesis import strategies as st

from crossbook.domain import commands as cmd
from crossbook.domain.enums import OrderType, Side, StpMode, TimeInForce
from crossbook.domain.instruments import Asset, Instrument

T = TypeVar("T")

BTC, ETH, USD = Asset("BTC", 0), Asset("ETH", 2), Asset("USD", 2)
ASSETS = (BTC, ETH, USD)
UNKNOWN_ACCOUNT = 99

# BTC-USD: 1 lot = 1 BTC unit, 1 tick x 1 lot = 100 USD units; price band 90-110
BTC_USD = Instrument.create(
    "BTC-USD", BTC, USD, "1", "1", min_price="90", max_price="110", max_qty="40"
)
# ETH-USD: 1 lot = 10 ETH units, 1 tick x 1 lot = 5 USD units; ticks 180-220; min notional
ETH_USD = Instrument.create(
    "ETH-USD", ETH, USD, "0.5", "0.1", min_price="90", max_price="110", min_notional="20"
)
MIDS = {"BTC-USD": 100, "ETH-USD": 200}
INSTRUMENTS = {"BTC-USD": BTC_USD, "ETH-USD": ETH_USD}

CLIENT_IDS = ("", "", "", "a", "b", "c")
FEES = ((0, 0), (0, 10), (-2, 5), (10, 10), (5, 25), (-5, 5))
LONG = os.environ.get("CROSSBOOK_HYPOTHESIS_PROFILE") == "long"
MAX_TRADING_COMMANDS = 150 if LONG else 50


@dataclass(frozen=True)
class Features:
    """Which order features a stream may use."""

    icebergs: bool = True
    stops: bool = True
    gtd: bool = True
    quote_sized: bool = True
    halts: bool = True


ALL_FEATURES = Features()


_BOOLEANS = st.booleans()


@functools.cache
def _sampled(values: tuple[Any, ...], types: tuple[type, ...]) -> st.SearchStrategy[Any]:
    return st.sampled_from(values)


def pick(values: Iterable[T]) -> st.SearchStrategy[T]:
    """`st.sampled_from`, built once per set of values (building strategies is slow).

    Keyed by the values' types too: enum members and bools compare equal to plain ints.
    """
    chosen = tuple(values)
    return _sampled(chosen, tuple(type(v) for v in chosen))


@functools.cache
def ints(low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(low, high)


def rarely(draw: st.DrawFn, one_in: int) -> bool:
    """True about once in `one_in` draws; shrinks toward False (the ordinary case)."""
    return draw(ints(0, one_in - 1)) == one_in - 1


@st.composite
def setup(draw: st.DrawFn) -> tuple[list[cmd.Command], list[int], list[str]]:
    """Assets, one or two instruments, 2-4 accounts with fees and deposits."""
    commands: list[cmd.Command] = [cmd.AddAsset(a) for a in ASSETS]
    symbols = list(draw(pick([("BTC-USD",), ("BTC-USD", "ETH-USD"), ("ETH-USD",)])))
    commands += [cmd.AddInstrument(INSTRUMENTS[s]) for s in symbols]
    accounts = list(range(1, draw(ints(2, 4)) + 1))
    for account in accounts:
        maker, taker = draw(pick(FEES))
        commands.append(cmd.CreateAccount(account, maker, taker))  # type: ignore[arg-type]
        for asset, scale in (("BTC", 1), ("ETH", 10), ("USD", 100 * 100)):
            lots = draw(pick([300, 300, 150, 60, 10, 0]))
            if lots:
                commands.append(
                    cmd.Deposit(account, asset, lots * scale, f"seed-{account}-{asset}")
                )  # type: ignore[arg-type]
    return commands, accounts, symbols


@st.composite
def command_streams(
    draw: st.DrawFn, features: Features = ALL_FEATURES, max_size: int = MAX_TRADING_COMMANDS
) -> list[tuple[int, int, cmd.Command]]:
    """Setup, then trading. The stream is shadowed on a reference exchange while it is
    drawn, only so that cancels and amends can name orders that are open right now."""
    from tests.support.reference import ReferenceExchange

    shadow = ReferenceExchange()
    setup_commands, accounts, symbols = draw(setup())
    stream: list[tuple[int, int, cmd.Command]] = []
    ts = 1_000

    def add(command: cmd.Command) -> None:
        stream.append((len(stream) + 1, ts, command))
        shadow.apply(len(stream), ts, command)

    for command in setup_commands:
        add(command)
    for _ in range(draw(ints(min(10, max_size), max_size))):
        ts += draw(pick([0, 1, 2, 5]))
        account = UNKNOWN_ACCOUNT if rarely(draw, 50) else draw(pick(accounts))
        symbol = "XYZ-USD" if rarely(draw, 80) else draw(pick(symbols))
        kind = draw(pick(_KINDS))
        if features.halts and shadow.halted and draw(ints(0, 2)) == 0:
            add(cmd.ResumeTrading(draw(pick(sorted(shadow.halted)))))
        elif kind == "place":
            add(draw(orders(account, symbol, ts, features)))
        elif kind in ("cancel", "amend"):
            add(draw(targeted(kind, shadow, account, symbol)))
        elif kind == "cancel_all":
            add(cmd.CancelAllOrders(account, symbol))  # type: ignore[arg-type]
        elif kind in ("deposit", "withdraw"):
            asset = "DOGE" if rarely(draw, 20) else draw(pick(["BTC", "ETH", "USD"]))
            amount = draw(pick([1_000, 50, 7, 100_000, 1, 0, -5]))
            tx_id = draw(pick([f"tx-{len(stream)}", f"tx-{len(stream)}", "t1", ""]))
            kind_type = cmd.Deposit if kind == "deposit" else cmd.Withdraw
            add(kind_type(account, asset, amount, tx_id))  # type: ignore[arg-type]
        elif kind == "fees":
            maker, taker = draw(pick((*FEES, (-20, 10), (0, -1))))
            add(cmd.SetFees(account, maker, taker))  # type: ignore[arg-type]
        elif kind == "expire" and features.gtd:
            add(cmd.ExpireOrders())
        elif kind == "halt" and features.halts:
            add(cmd.HaltTrading(symbol))
        else:
            add(draw(orders(account, symbol, ts, features)))
    return stream


_KINDS = (
    ("place",) * 24
    + ("cancel",) * 4
    + ("amend",) * 5
    + ("cancel_all", "deposit", "withdraw", "fees", "expire", "expire", "halt")
)


@st.composite
def targeted(
    draw: st.DrawFn, kind: str, shadow: object, account: int, symbol: str
) -> cmd.CancelOrder | cmd.AmendOrder:
    """A cancel or amend naming an open order (mostly the caller's), a closed one, a
    never-issued id, or a client order id."""
    from tests.support.reference import ReferenceExchange

    assert isinstance(shadow, ReferenceExchange)
    how = draw(pick(["owner"] * 6 + ["other", "closed", "unissued", "client"]))
    order_id, cid = 0, ""
    if how in ("owner", "other") and shadow.open_orders:
        order = shadow.open_orders[draw(ints(0, len(shadow.open_orders) - 1))]
        order_id = order.order_id
        if how == "owner":
            account, symbol = order.account, order.symbol
    elif how == "closed" and shadow.next_order_id > 1:
        order_id = draw(ints(1, shadow.next_order_id - 1))
    elif how == "client":
        cid = draw(pick(CLIENT_IDS))
    else:
        order_id = shadow.next_order_id + draw(ints(0, 3))
    if kind == "cancel":
        return cmd.CancelOrder(account, symbol, order_id, cid)  # type: ignore[arg-type]
    qty = draw(pick([0, 1, 2, 3, 5, 8, 12, -1]))
    price = draw(pick([0, 1])) and draw(prices(symbol))
    return cmd.AmendOrder(account, symbol, order_id, cid, qty, price)  # type: ignore[arg-type]


@functools.cache
def prices(symbol: str) -> st.SearchStrategy[int]:
    mid = MIDS.get(symbol, 100)
    inst = INSTRUMENTS.get(symbol, BTC_USD)
    near = pick([mid, mid - 1, mid + 1, mid - 2, mid + 2, mid - 1, mid + 1, mid - 3, mid + 3])
    odd = pick([inst.min_price - 1, inst.max_price + 1, 0, -1, inst.min_price])
    return ints(0, 19).flatmap(lambda dice: odd if dice == 19 else near)


@st.composite
def orders(draw: st.DrawFn, account: int, symbol: str, ts: int, f: Features) -> cmd.PlaceOrder:
    side = draw(pick(Side))
    types = [OrderType.LIMIT] * 7 + [OrderType.MARKET] * 2
    if f.stops:
        types += [
            OrderType.STOP_LOSS,
            OrderType.STOP_LOSS_LIMIT,
            OrderType.TAKE_PROFIT,
            OrderType.TAKE_PROFIT_LIMIT,
        ]
    typ = draw(pick(types))
    bad_qty = rarely(draw, 20)
    qty = draw(pick([0, -2, 35, 41]) if bad_qty else ints(1, 8))
    price = draw(prices(symbol)) if typ in _LIMIT_PRICED else 0
    stop_price = draw(prices(symbol)) if typ.is_stop else 0
    tifs = [TimeInForce.GTC] * 4 + [TimeInForce.IOC, TimeInForce.FOK]
    if f.gtd and (typ in _LIMIT_PRICED or rarely(draw, 10)):
        tifs += [TimeInForce.GTD] * 2
    tif = draw(pick(tifs))
    expire_ts = ts + draw(pick([5, 1, 12, 30, 0])) if tif is TimeInForce.GTD else 0
    resting = tif in (TimeInForce.GTC, TimeInForce.GTD)
    odd_combination = rarely(draw, 20)  # flags on orders they do not apply to
    post_only = ((typ is OrderType.LIMIT and resting) or odd_combination) and rarely(draw, 6)
    visible = 0
    icebergs = (typ in _LIMIT_PRICED and resting) or odd_combination
    if f.icebergs and icebergs and qty > 1 and rarely(draw, 4):
        visible = draw(ints(1, qty - 1))
    quote_qty = 0
    if f.quote_sized and typ.is_market and side is Side.BUY and rarely(draw, 3):
        qty, quote_qty = 0, draw(pick([50_000, 120_000, 250_000, 3_000, 1]))
    stp = StpMode.NONE if draw(_BOOLEANS) else draw(pick(StpMode))
    cid = draw(pick(CLIENT_IDS))
    return cmd.PlaceOrder(
        account,
        symbol,
        side,
        typ,
        qty,
        price,
        tif,
        quote_qty,
        stop_price,
        expire_ts,  # type: ignore[arg-type]
        post_only,
        visible,
        stp,
        cid,  # type: ignore[arg-type]
    )


_LIMIT_PRICED = (OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)
