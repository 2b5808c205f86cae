"""Seeded command streams for benchmarks, crash tests and smoke runs.

`setup_commands` lists a venue: a quote asset, one base asset per symbol, instruments with
tick and lot 1 at precision 0 (so ticks, lots and units are the same numbers), and accounts
funded far beyond what the stream can spend. `order_flow` then yields a reproducible mix
for a given seed:

    70% limit orders within +-20 ticks of 1000 (both sides, so about half cross and trade),
    10% market orders, 20% cancels of an earlier order of the same account by client id.

The stream is deterministic in the seed; stamps come from the sequencer, not from here.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from crossbook.domain.commands import (
    AddAsset,
    AddInstrument,
    CancelOrder,
    Command,
    CreateAccount,
    Deposit,
    PlaceOrder,
)
from crossbook.domain.enums import OrderType, Side, TimeInForce
from crossbook.domain.instruments import Asset, Instrument
from crossbook.domain.values import AccountId, Lots, Ticks, Units

QUOTE = Asset("USD", 0)
MID = 1000
FUNDS = 10**15


def symbols(count: int) -> list[str]:
    return [f"S{index}-USD" for index in range(count)]


def setup_commands(symbol_count: int = 1, accounts: int = 10) -> list[Command]:
    commands: list[Command] = [AddAsset(QUOTE)]
    for symbol in symbols(symbol_count):
        base = Asset(symbol.split("-")[0], 0)
        commands.append(AddAsset(base))
        commands.append(AddInstrument(Instrument.create(symbol, base, QUOTE, "1", "1")))
    for number in range(1, accounts + 1):
        account = AccountId(number)
        commands.append(CreateAccount(account))
        assets = [QUOTE.code, *(s.split("-")[0] for s in symbols(symbol_count))]
        commands.extend(
            Deposit(account, asset, Units(FUNDS), f"fund-{number}-{asset}") for asset in assets
        )
    return commands


def order_flow(seed: int, symbol_count: int = 1, accounts: int = 10) -> Iterator[Command]:
    rng = random.Random(seed)
    names = symbols(symbol_count)
    placed: list[tuple[AccountId, str, str]] = []
    counter = 0
    while True:
        roll = rng.random()
        if roll < 0.2 and placed:
            account, symbol, client_id = placed[rng.randrange(len(placed))]
            yield CancelOrder(account, symbol, client_order_id=client_id)
            continue
        counter += 1
        account = AccountId(rng.randint(1, accounts))
        symbol = names[rng.randrange(len(names))]
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        qty = Lots(rng.randint(1, 10))
        client_id = f"c{counter}"
        if roll < 0.3:
            yield PlaceOrder(
                account,
                symbol,
                side,
                OrderType.MARKET,
                qty,
                tif=TimeInForce.IOC,
                client_order_id=client_id,
            )
            continue
        price = Ticks(MID + rng.randint(-20, 20))
        yield PlaceOrder(
            account, symbol, side, OrderType.LIMIT, qty, price, client_order_id=client_id
        )
        placed.append((account, symbol, client_id))
        if len(placed) > 1000:
            placed = placed[-500:]
