"""A seeded stream of `Applied` records shaped like an exchange's output, for history tests.

It does not run the engine: it writes the events a venue would emit (instrument added,
accounts funded, orders accepted, trades with fees, cancels, amends, stop triggers, rejects,
balance changes with absolute values), so history can be tested and benchmarked on its own.
Order ids, trade ids and sequence numbers are contiguous; timestamps advance by a few
milliseconds per command so candles span many minutes.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from crossbook.domain import commands as cmd
from crossbook.domain import events as ev
from crossbook.domain.enums import CloseReason, OrderStatus, OrderType, Side, StpMode, TimeInForce
from crossbook.domain.instruments import Asset, Instrument
from crossbook.domain.rejects import Reject
from crossbook.domain.values import AccountId, Lots, Nanos, OrderId, Ticks, TradeId, Units
from crossbook.sequencer.ports import Applied

BTC = Asset("BTC", 8)
USDT = Asset("USDT", 6)
INSTRUMENTS = (
    Instrument.create("BTC-USDT", BTC, USDT, "0.01", "0.0001"),
    Instrument.create("ETH-USDT", Asset("ETH", 8), USDT, "0.01", "0.001"),
)
START_TS = 1_700_000_000_000_000_000


@dataclass(eq=False)  # identity: `open.remove` finds the order without comparing fields
class _Open:
    order_id: int
    account: int
    symbol: str
    side: Side
    qty: int
    filled: int = 0


@dataclass
class Workload:
    seed: int = 7
    accounts: int = 20
    seq: int = 0
    ts: int = START_TS
    order_id: int = 0
    trade_id: int = 0
    balances: dict[tuple[int, str], list[int]] = field(default_factory=dict)
    open: list[_Open] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def _applied(self, command: cmd.Command, events: list[ev.Event]) -> Applied:
        self.seq += 1
        self.ts += self.rng.randint(1_000_000, 40_000_000)
        return Applied(self.seq, self.ts, command, events)

    def _balance(self, account: int, asset: str, free: int, locked: int) -> ev.BalanceChanged:
        value = self.balances.setdefault((account, asset), [0, 0])
        value[0] += free
        value[1] += locked
        return ev.BalanceChanged(AccountId(account), asset, Units(value[0]), Units(value[1]))

    def setup(self) -> list[Applied]:
        out = [
            self._applied(cmd.AddInstrument(instrument), [ev.InstrumentAdded(instrument)])
            for instrument in INSTRUMENTS
        ]
        for account in range(1, self.accounts + 1):
            out.append(
                self._applied(
                    cmd.CreateAccount(AccountId(account), 1, 2),
                    [ev.AccountCreated(AccountId(account), 1, 2)],
                )
            )
            for asset in ("BTC", "ETH", "USDT"):
                amount = Units(10**12)
                tx = f"dep-{account}-{asset}"
                out.append(
                    self._applied(
                        cmd.Deposit(AccountId(account), asset, amount, tx),
                        [
                            ev.FundsDeposited(AccountId(account), asset, amount, tx),
                            self._balance(account, asset, amount, 0),
                        ],
                    )
                )
        return out

    def _accept(self, account: int, symbol: str, side: Side, qty: int, price: int) -> tuple[
        cmd.PlaceOrder, ev.OrderAccepted
    ]:  # fmt: skip
        self.order_id += 1
        place = cmd.PlaceOrder(
            AccountId(account), symbol, side, OrderType.LIMIT, Lots(qty), Ticks(price)
        )
        accepted = ev.OrderAccepted(
            OrderId(self.order_id), AccountId(account), symbol, side, OrderType.LIMIT, Lots(qty),
            Ticks(price), TimeInForce.GTC, Units(0), Ticks(0), Nanos(0), False, Lots(0),
            StpMode.NONE, f"c{self.order_id}", True,
        )  # fmt: skip
        return place, accepted

    def step(self) -> Applied:
        roll = self.rng.random()
        account = self.rng.randint(1, self.accounts)
        symbol = self.rng.choice(INSTRUMENTS).symbol
        side = self.rng.choice((Side.BUY, Side.SELL))
        price = self.rng.randint(9_900, 10_100)
        quote, base = "USDT", symbol.split("-")[0]
        if roll < 0.45 or not self.open:
            qty = self.rng.randint(1, 50)
            place, accepted = self._accept(account, symbol, side, qty, price)
            self.open.append(_Open(accepted.order_id, account, symbol, side, qty))
            held = quote if side is Side.BUY else base
            return self._applied(place, [accepted, self._balance(account, held, -qty, qty)])
        if roll < 0.80:
            return self._trade(account)
        if roll < 0.93:
            order = self.open.pop(self.rng.randrange(len(self.open)))
            left = order.qty - order.filled
            held = quote if order.side is Side.BUY else base
            return self._applied(
                cmd.CancelOrder(AccountId(order.account), order.symbol, OrderId(order.order_id)),
                [
                    ev.OrderCanceled(
                        OrderId(order.order_id), AccountId(order.account), order.symbol,
                        f"c{order.order_id}", CloseReason.USER, Lots(order.filled),
                    ),
                    self._balance(order.account, held, left, -left),
                ],
            )  # fmt: skip
        if roll < 0.97:
            order = self.rng.choice(self.open)
            order.qty += 5
            return self._applied(
                cmd.AmendOrder(AccountId(order.account), order.symbol, OrderId(order.order_id)),
                [
                    ev.OrderAmended(
                        OrderId(order.order_id), AccountId(order.account), order.symbol,
                        f"c{order.order_id}", Lots(order.qty), Ticks(price), Lots(order.filled),
                        False,
                    ),
                ],
            )  # fmt: skip
        return self._applied(
            cmd.PlaceOrder(AccountId(account), symbol, side, OrderType.LIMIT, Lots(0)),
            [
                ev.OrderRejected(
                    AccountId(account), symbol, "", Reject.INVALID_QUANTITY, "qty must be > 0"
                )
            ],
        )

    def _trade(self, taker: int) -> Applied:
        maker = self.rng.choice(self.open)
        side = maker.side.opposite
        qty = self.rng.randint(1, maker.qty - maker.filled)
        place, accepted = self._accept(taker, maker.symbol, side, qty, 0)
        events: list[ev.Event] = [accepted]
        self.trade_id += 1
        maker.filled += qty
        maker_status = OrderStatus.FILLED if maker.filled == maker.qty else (
            OrderStatus.PARTIALLY_FILLED
        )  # fmt: skip
        if maker_status is OrderStatus.FILLED:
            self.open.remove(maker)
        price = 10_000 + self.trade_id % 37
        quote_qty = price * qty
        maker_fee, taker_fee = quote_qty // 10_000, quote_qty * 2 // 10_000
        events.append(
            ev.TradeExecuted(
                TradeId(self.trade_id), maker.symbol, Ticks(price), Lots(qty), Units(quote_qty),
                side, OrderId(maker.order_id), AccountId(maker.account), Units(maker_fee),
                Lots(maker.filled), maker_status, accepted.order_id, AccountId(taker),
                Units(taker_fee), Lots(qty), OrderStatus.FILLED,
            )
        )  # fmt: skip
        base = maker.symbol.split("-")[0]
        buyer, seller = (taker, maker.account) if side is Side.BUY else (maker.account, taker)
        events.append(self._balance(buyer, base, qty, 0))
        events.append(self._balance(buyer, "USDT", -quote_qty, 0))
        events.append(self._balance(seller, base, -qty, 0))
        events.append(self._balance(seller, "USDT", quote_qty - maker_fee, 0))
        return self._applied(place, events)

    def stream(self, commands: int) -> Iterator[Applied]:
        yield from self.setup()
        while self.seq < commands:
            yield self.step()


def records(commands: int, seed: int = 7) -> list[Applied]:
    """`commands` records (setup included) from a fresh seeded workload."""
    return list(Workload(seed=seed).stream(commands))


def batches(records: list[Applied], seed: int = 3, largest: int = 300) -> list[list[Applied]]:
    """Cut records into batches of random sizes, as the sequencer's load-adaptive turns would."""
    rng = random.Random(seed)
    out, i = [], 0
    while i < len(records):
        size = rng.randint(1, largest)
        out.append(records[i : i + size])
        i += size
    return out
