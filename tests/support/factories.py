"""Builders for tests: a small venue with simple integer steps and funded accounts."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from crossbook.domain import commands as cmd
from crossbook.domain import events as ev
from crossbook.domain.enums import OrderType, Side, StpMode, TimeInForce
from crossbook.domain.instruments import Asset, Instrument
from crossbook.domain.values import AccountId, Lots, Nanos, OrderId, Ticks, Units
from crossbook.engine.exchange import Exchange

BTC = Asset("BTC", 0)
USD = Asset("USD", 0)
SYMBOL = "BTC-USD"
# tick 1 and lot 1 at precision 0: ticks, lots and units are the same numbers in tests
SIMPLE = Instrument.create(SYMBOL, BTC, USD, "1", "1", max_price="1000000")

ALICE, BOB, CAROL = AccountId(1), AccountId(2), AccountId(3)


class Venue:
    """An exchange plus a sequence counter; every call applies one command and checks."""

    def __init__(self, exchange: Exchange | None = None, check: bool = True) -> None:
        self.ex = exchange or Exchange()
        self.seq = itertools.count(self.ex.last_seq + 1)
        self.ts = 1_000
        self.check = check
        self.log: list[tuple[int, int, cmd.Command]] = []

    def do(self, command: cmd.Command, ts: int | None = None) -> list[ev.Event]:
        if ts is not None:
            self.ts = ts
        seq = next(self.seq)
        self.log.append((seq, self.ts, command))
        events = self.ex.apply(seq, self.ts, command)
        if self.check:
            self.ex.check_invariants()
        return events

    def place(
        self,
        account: int,
        side: Side,
        qty: int,
        price: int = 0,
        *,
        type: OrderType = OrderType.LIMIT,
        tif: TimeInForce = TimeInForce.GTC,
        **extra: object,
    ) -> list[ev.Event]:
        return self.do(
            cmd.PlaceOrder(
                AccountId(account), SYMBOL, side, type, Lots(qty), Ticks(price), tif, **extra  # type: ignore[arg-type]
            )
        )

    def buy(self, account: int, qty: int, price: int = 0, **kw: object) -> list[ev.Event]:
        return self.place(account, Side.BUY, qty, price, **kw)  # type: ignore[arg-type]

    def sell(self, account: int, qty: int, price: int = 0, **kw: object) -> list[ev.Event]:
        return self.place(account, Side.SELL, qty, price, **kw)  # type: ignore[arg-type]

    def cancel(self, account: int, order_id: int) -> list[ev.Event]:
        return self.do(cmd.CancelOrder(AccountId(account), SYMBOL, OrderId(order_id)))

    def cancel_all(self, account: int) -> list[ev.Event]:
        return self.do(cmd.CancelAllOrders(AccountId(account), SYMBOL))

    def amend(self, account: int, order_id: int, qty: int = 0, price: int = 0) -> list[ev.Event]:
        amend = cmd.AmendOrder(
            AccountId(account), SYMBOL, OrderId(order_id), "", Lots(qty), Ticks(price)
        )
        return self.do(amend)

    def expire(self, ts: int) -> list[ev.Event]:
        return self.do(cmd.ExpireOrders(), ts)

    def balance(self, account: int, asset: str) -> tuple[int, int]:
        """(free, locked) of one asset, (0, 0) when never touched."""
        return self.ex.balances(account).get(asset, (0, 0))

    def depth(self) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        return self.ex.depth(SYMBOL)

    def queue(self, side: Side, price: int) -> list[int]:
        """Order ids resting at one level, in priority order."""
        return [o.order_id for o in self.ex.orders_at(SYMBOL, side, price)]


def venue(
    accounts: Iterable[int] = (ALICE, BOB, CAROL),
    funds: int = 10**9,
    maker_bps: int = 0,
    taker_bps: int = 0,
    instrument: Instrument = SIMPLE,
) -> Venue:
    v = Venue()
    v.do(cmd.AddAsset(BTC))
    v.do(cmd.AddAsset(USD))
    v.do(cmd.AddInstrument(instrument))
    for a in accounts:
        v.do(cmd.CreateAccount(AccountId(a), maker_bps, taker_bps))
        for asset in (BTC, USD):
            v.do(cmd.Deposit(AccountId(a), asset.code, Units(funds), f"seed-{a}-{asset.code}"))
    return v


def of(events: list[ev.Event], kind: type) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, kind)]


def accepted_id(events: list[ev.Event]) -> int:
    return int(of(events, ev.OrderAccepted)[0].order_id)


def rejected_code(events: list[ev.Event]) -> int | None:
    rejected = of(events, ev.OrderRejected)
    return int(rejected[0].code) if rejected else None


def only_rejection(
    v: Venue, events: list[ev.Event], code: int, before: str
) -> ev.OrderRejected:
    """Assert `events` is one rejection with `code` and a message, and the state is `before`."""
    assert len(events) == 1, events
    [rejected] = of(events, ev.OrderRejected)
    assert rejected.code == code, rejected
    assert rejected.message
    assert v.ex.state_hash() == before
    return rejected


def trades(events: list[ev.Event]) -> list[tuple[int, int, int, int]]:
    """The trades of some events as (maker order id, taker order id, price, qty)."""
    return [
        (int(t.maker_order_id), int(t.taker_order_id), int(t.price), int(t.qty))
        for t in of(events, ev.TradeExecuted)
    ]


__all__ = ["ALICE", "BOB", "CAROL", "SYMBOL", "Nanos", "StpMode", "Venue", "venue"]
