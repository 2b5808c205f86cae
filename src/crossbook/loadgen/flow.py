"""The order flow of `crossbook bench`: a seeded, realistic mix over accounts and symbols.

Contract:
- `OrderFlow(seed, symbols, accounts)` gives, per call of `next(account)`, one `Action`:
  a limit order on either side around the symbol's moving mid (a share of them priced to
  cross the spread), a cancel of one of the account's own open orders, or an amend
  (new price, or a smaller size) of one. Mix shares are `Mix` fields; without open orders
  a cancel or amend becomes a new order.
- The flow tracks the account's open orders from the answers it is told about
  (`accepted`, `closed`), so cancels and amends name real orders: one of the account's 64
  oldest open orders, at random. An order leaves the set when its cancel is issued, so
  pipelined requests do not all cancel the same order. Prices are integer ticks
  and sizes integer lots (the instrument's own grid); every order carries a unique
  `client_order_id` (`<run>-<account>-<n>`) so a run's orders can be found afterwards.
- The mid of each symbol follows a bounded random walk (one tick per `walk_every` orders).
- Draws are `random()` scaled to the range (cheaper than `randint`/`choice`, which matters
  when the load generator shares the cores with the node it measures); actions and open
  orders are msgspec structs (about a fifth of a dataclass's construction cost).

Pure apart from its own seeded `random.Random`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from itertools import islice
from typing import Final, Literal

import msgspec

from crossbook.domain.enums import Side

ActionKind = Literal["new", "cancel", "amend"]
_OLDEST: Final = 64
"""Cancels and amends pick among this many of the account's oldest open orders."""
_STEPS: Final = (-2, -1, 1, 2)
"""Price moves of an amend, in ticks."""
_BUY: Final = Side.BUY
_SELL: Final = Side.SELL
"""Enum members as module constants: reading `Side.SELL` from its class goes through the
enum metaclass's `__getattr__` hook on CPython 3.11 (about 40 times a global load)."""


@dataclass(frozen=True, slots=True)
class Mix:
    new: float = 0.70
    cancel: float = 0.20
    amend: float = 0.10
    cross: float = 0.10
    """Share of new orders priced through the opposite side (they trade)."""
    spread_ticks: int = 50
    """New resting orders are placed 1..spread_ticks ticks away from the mid."""
    qty_lots: tuple[int, int] = (1, 20)


class Action(msgspec.Struct, gc=False):
    kind: ActionKind
    account: int
    symbol: str
    side: Side = Side.BUY
    price: int = 0
    qty: int = 0
    order_id: int = 0
    client_order_id: str = ""


@dataclass(slots=True)
class _Book:
    mid: int
    low: int
    high: int


class _Open(msgspec.Struct, gc=False):
    symbol: str
    qty: int
    price: int


@dataclass(slots=True)
class OrderFlow:
    seed: int
    symbols: dict[str, int]
    """symbol → starting mid in ticks."""
    run: str = "run"
    mix: Mix = field(default_factory=Mix)
    walk_every: int = 50
    rng: random.Random = field(init=False)
    books: dict[str, _Book] = field(init=False)
    open: dict[int, dict[int, _Open]] = field(init=False)
    counters: dict[int, int] = field(init=False)
    names: list[str] = field(init=False)
    issued: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.books = {s: _Book(m, m // 2, m * 2) for s, m in self.symbols.items()}
        self.open = {}
        self.counters = {}
        self.names = sorted(self.symbols)

    def next(self, account: int) -> Action:
        rng, mix = self.rng, self.mix
        roll = rng.random()
        owned = self.open.get(account)
        if owned and roll >= mix.new:
            pick = int(rng.random() * min(len(owned), _OLDEST))
            order_id = next(islice(owned, pick, None))
            held = owned[order_id]
            if roll < mix.new + mix.cancel:
                del owned[order_id]  # being canceled: name it once
                return Action("cancel", account, held.symbol, order_id=order_id)
            if held.qty > 1 and rng.random() < 0.5:
                return Action("amend", account, held.symbol, order_id=order_id,
                              qty=1 + int(rng.random() * (held.qty - 1)))
            book = self.books[held.symbol]
            price = max(1, held.price + _STEPS[int(rng.random() * 4)])
            price = min(max(price, book.low), book.high)
            return Action("amend", account, held.symbol, order_id=order_id, price=price)
        return self._new(account)

    def _new(self, account: int) -> Action:
        rng, mix = self.rng, self.mix
        random = rng.random
        names = self.names
        symbol = names[int(random() * len(names))]
        book = self.books[symbol]
        self.issued += 1
        if self.issued % self.walk_every == 0:
            step = 1 if random() < 0.5 else -1
            book.mid = min(max(book.mid + step, book.low), book.high)
        side = _BUY if random() < 0.5 else _SELL
        away = 1 + int(random() * mix.spread_ticks)
        if random() < mix.cross:
            away = -1 - int(random() * 5)
        price = book.mid - away if side is _BUY else book.mid + away
        count = self.counters.get(account, 0) + 1
        self.counters[account] = count
        low, high = mix.qty_lots
        return Action(
            "new", account, symbol, side, max(price, 1), low + int(random() * (high - low + 1)),
            client_order_id=f"{self.run}-{account}-{count}",
        )

    def accepted(self, account: int, order_id: int, symbol: str, qty: int, price: int) -> None:
        owned = self.open.get(account)
        if owned is None:
            owned = self.open[account] = {}
        owned[order_id] = _Open(symbol, qty, price)

    def amended(self, account: int, order_id: int, qty: int, price: int) -> None:
        held = self.open.get(account, {}).get(order_id)
        if held is not None:
            held.qty, held.price = qty, price

    def closed(self, account: int, order_id: int) -> None:
        owned = self.open.get(account)
        if owned is not None:
            owned.pop(order_id, None)
