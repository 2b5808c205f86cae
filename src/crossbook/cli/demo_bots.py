"""The demo's trading bots: market makers and takers, each an SDK client of the node.

- `MarketMaker` quotes a ladder of `levels` bids and asks around a mid price that
  random-walks; every tick it reads its open orders and cancels the quotes that left the
  ladder and places the missing ones (so the book changes a little at a time and a fill
  is replaced on the next tick).
- `Taker` sends small market orders at random intervals, leaning against the move from the
  reference price so that prices wander without running away.

Bots never stop on a server error: they count it in `errors` and go on (a halted symbol or
a spent balance must not kill the demo). `cancel()` the task to stop one.
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from crossbook.client import AsyncClient, CrossbookError
from crossbook.protocol.native import SideName


@dataclass(frozen=True, slots=True)
class Market:
    symbol: str
    mid: Decimal
    tick: Decimal
    lot: Decimal
    size: Decimal
    """Typical quote size in base units."""


def snap(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_DOWN) * step


class MarketMaker:
    def __init__(self, client: AsyncClient, market: Market, *, levels: int = 10,
                 spread_bps: int = 2, step_bps: int = 2, interval: float = 0.5,
                 volatility: float = 0.0003, seed: int | None = None) -> None:
        self.client, self.market = client, market
        self.levels, self.spread_bps, self.step_bps = levels, spread_bps, step_bps
        self.interval, self.volatility = interval, volatility
        self.mid = market.mid
        self.random = random.Random(seed)
        self.sizes = [Decimal(str(round(0.6 + self.random.random(), 2))) for _ in range(levels)]
        self.errors = 0
        self.ticks = 0

    def ladder(self) -> dict[tuple[SideName, Decimal], Decimal]:
        """Quotes on a fixed price grid, so that a small move of the mid keeps most of them."""
        m = self.market
        grid = max(m.tick, snap(m.mid * Decimal(self.step_bps) / Decimal(10_000), m.tick))
        center = (self.mid / grid).to_integral_value(ROUND_DOWN)
        gap = max(1, self.spread_bps // self.step_bps)
        out: dict[tuple[SideName, Decimal], Decimal] = {}
        for i in range(self.levels):
            size = snap(m.size * Decimal(1 + i * 0.5) * self.sizes[i], m.lot)
            out["buy", (center - gap - i) * grid] = size
            out["sell", (center + gap + i) * grid] = size
        return out

    def step_mid(self) -> None:
        drift = (self.market.mid - self.mid) / self.market.mid * Decimal("0.02")
        shock = Decimal(str(math.exp(self.random.gauss(0.0, self.volatility)) - 1))
        self.mid = max(self.market.tick, self.mid * (1 + shock + drift))

    async def tick(self) -> None:
        self.ticks += 1
        self.step_mid()
        target = self.ladder()
        orders = await self.client.open_orders(self.market.symbol)
        have: set[tuple[SideName, Decimal]] = set()
        for order in orders:
            key: tuple[SideName, Decimal] = (order.side, Decimal(order.price or "0"))
            if key in target and key not in have:
                have.add(key)
            else:
                await self.client.cancel_order(order.order_id)
        await asyncio.gather(*(
            self.client.place_order(self.market.symbol, side, "limit", size, price)
            for (side, price), size in target.items() if (side, price) not in have and size > 0
        ))

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except CrossbookError:
                self.errors += 1
            await asyncio.sleep(self.interval * (0.5 + self.random.random()))


class Taker:
    def __init__(self, client: AsyncClient, markets: list[Market], *,
                 mean_interval: float = 0.7, seed: int | None = None) -> None:
        self.client, self.markets = client, markets
        self.mean_interval = mean_interval
        self.random = random.Random(seed)
        self.errors = 0
        self.orders = 0

    async def trade(self) -> None:
        market = self.random.choice(self.markets)
        ticker = await self.client.ticker(market.symbol)
        last = Decimal(ticker.last) if ticker.last else market.mid
        lean = float((last - market.mid) / market.mid) * 40
        side: SideName = "sell" if self.random.random() < 0.5 + max(-0.3, min(0.3, lean)) else "buy"
        qty = snap(market.size * Decimal(str(0.2 + self.random.random() * 1.5)), market.lot)
        if qty > 0:
            self.orders += 1
            await self.client.place_order(market.symbol, side, "market", qty)

    async def run(self) -> None:
        while True:
            try:
                await self.trade()
            except CrossbookError:
                self.errors += 1
            await asyncio.sleep(self.random.expovariate(1 / self.mean_interval))
