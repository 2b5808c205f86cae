"""Seeded order-flow workloads shared by the benchmarks.

`engine_mix` builds a command list (about 60% limit, 30% cancel, 10% market) over `symbols`
instruments and `accounts` funded accounts, around a mid price that random-walks. Cancels
target orders that are really resting: the generator runs its own engine while building, so
the list replays with the intended mix and a book of about `resting` orders per symbol.
Everything is built before timing; the same seed gives the same list.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from crossbook.domain import commands as cmd
from crossbook.domain import events as ev
from crossbook.domain.enums import OrderType, Side, TimeInForce
from crossbook.domain.instruments import Asset, Instrument
from crossbook.domain.values import AccountId, Lots, Ticks, Units
from crossbook.engine.exchange import Exchange

USDT = Asset("USDT", 8)


@dataclass(frozen=True)
class Workload:
    name: str
    seed: int
    setup: list[cmd.Command]
    commands: list[cmd.Command]

    def describe(self) -> dict[str, object]:
        kinds: dict[str, int] = {}
        for c in self.commands:
            key = type(c).__name__
            if isinstance(c, cmd.PlaceOrder):
                key += "." + c.type.name.lower()
            kinds[key] = kinds.get(key, 0) + 1
        return {"name": self.name, "seed": self.seed, "commands": len(self.commands), "mix": kinds}


def setup_commands(symbols: int, accounts: int) -> list[cmd.Command]:
    out: list[cmd.Command] = [cmd.AddAsset(USDT)]
    for i in range(symbols):
        base = Asset(f"C{i}", 8)
        out.append(cmd.AddAsset(base))
        out.append(
            cmd.AddInstrument(Instrument.create(f"C{i}-USDT", base, USDT, "0.01", "0.00001"))
        )
    for a in range(1, accounts + 1):
        out.append(cmd.CreateAccount(AccountId(a), 1, 5))
        out.append(cmd.Deposit(AccountId(a), "USDT", Units(10**15), f"u{a}"))
        out.extend(
            cmd.Deposit(AccountId(a), f"C{i}", Units(10**15), f"c{i}-{a}") for i in range(symbols)
        )
    return out


def engine_mix(
    n: int, symbols: int = 1, accounts: int = 100, resting: int = 2000, seed: int = 7
) -> Workload:
    rng = random.Random(seed)
    setup = setup_commands(symbols, accounts)
    ex = Exchange()
    seq = 0
    for c in setup:
        seq += 1
        ex.apply(seq, seq, c)
    names = [f"C{i}-USDT" for i in range(symbols)]
    mids = dict.fromkeys(names, 3_000_000)  # 30,000.00 in ticks of 0.01
    live: dict[str, list[tuple[int, int]]] = {s: [] for s in names}
    commands: list[cmd.Command] = []
    while len(commands) < n:
        symbol = names[rng.randrange(symbols)]
        mids[symbol] += rng.choice((-1, 0, 1))
        mid = mids[symbol]
        book = live[symbol]
        account = AccountId(rng.randint(1, accounts))
        r = rng.random()
        c: cmd.Command
        if r < 0.30 and book:
            i = rng.randrange(len(book))
            book[i], book[-1] = book[-1], book[i]
            order_id, owner = book.pop()
            c = cmd.CancelOrder(AccountId(owner), symbol, order_id=order_id)  # type: ignore[arg-type]
        elif r < 0.40:
            c = cmd.PlaceOrder(
                account, symbol, Side(rng.randint(1, 2)), OrderType.MARKET,
                Lots(rng.randint(1, 200)), tif=TimeInForce.IOC,
            )
        else:
            side = Side(rng.randint(1, 2))
            # mostly passive, sometimes crossing; deeper when the book is thin
            spread = 1 + int(200 * max(0.0, 1 - len(book) / resting))
            offset = rng.randint(-3, spread)
            price = mid - offset if side is Side.BUY else mid + offset
            c = cmd.PlaceOrder(
                account, symbol, side, OrderType.LIMIT, Lots(rng.randint(1, 200)), Ticks(price)
            )
        seq += 1
        events = ex.apply(seq, seq, c)
        for e in events:
            if isinstance(e, ev.OrderAccepted) and e.type is OrderType.LIMIT:
                book.append((e.order_id, e.account))
        commands.append(c)
        if len(commands) % 512 == 0:  # forget filled orders so cancels stay mostly valid
            for s in names:
                live[s] = [(o, a) for o, a in live[s] if o in ex.orders]
    return Workload(f"mix-{symbols}sym", seed, setup, commands)
