"""`/api/v3/klines` bounds are open times, as Binance's: a `startTime` inside a candle starts
at the next candle and an `endTime` inside one returns that whole candle, the same whether
the candles come from memory alone or partly from the history database (SQLite, real
projector). The gateway app is called in process over ASGI."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from crossbook.gateway import binance
from crossbook.gateway.app import build_app
from crossbook.gateway.context import GatewayContext
from crossbook.gateway.history import HistoryReader
from crossbook.gateway.limits import LimitConfig, RateLimiter
from crossbook.gateway.views import GatewayViews
from crossbook.history.projector import Projector
from crossbook.history.sqlite import SqliteStore
from crossbook.marketdata.views import MarketData
from crossbook.sequencer.ports import Applied
from tests.support.history_workload import batches, records

INTERVALS = ("1s", "1m", "5m", "1h", "4h", "1d", "1w")
NS_PER_MS = 1_000_000


def _stream() -> list[Applied]:
    raw = records(3_000)  # a few ms apart, stretched to about 10 days
    base = raw[0].ts
    return [Applied(a.seq, base + (a.ts - base) * 100_000, a.command, a.events) for a in raw]


def _context(stream: list[Applied], market: MarketData, history: Any) -> GatewayContext:
    views = GatewayViews()
    views.on_batch(stream)
    market.on_batch(stream)
    return GatewayContext(bus=None, views=views, market=market,  # type: ignore[arg-type]
                          limits=RateLimiter(LimitConfig(ip_weight_per_minute=0), lambda: 0),
                          history=history)


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://node")


async def _klines(client: httpx.AsyncClient, interval: str, **bounds: int) -> list[list[Any]]:
    response = await client.get("/api/v3/klines", params={
        "symbol": "BTCUSDT", "interval": interval, "limit": 1000, **bounds})
    assert response.status_code == 200, response.text
    rows: list[list[Any]] = response.json()
    return [row[:9] for row in rows]  # stored candles carry no taker-buy split


def test_klines_bounds_inside_a_candle_agree_between_memory_and_database(
        tmp_path: Path) -> None:
    stream = _stream()

    async def run() -> None:
        store = SqliteStore(tmp_path / "h.sqlite3")
        projector = Projector(store, chunk_commands=500)
        await projector.start()
        for part in batches(stream):
            projector.on_batch(part)
        await projector.flush()
        try:
            memory = build_app(_context(stream, MarketData(candle_history=100_000), None),
                               [binance.register])
            # memory keeps the last 2 candles per interval: the rest come from the database
            mixed = build_app(_context(stream, MarketData(candle_history=2),
                                       HistoryReader(store)), [binance.register])
            async with _client(memory) as from_memory, _client(mixed) as from_both:
                for interval in INTERVALS:
                    every = await _klines(from_memory, interval)
                    assert len(every) >= 6, interval
                    opens = [row[0] for row in every]
                    inside_1, inside_4 = opens[1] + 1, opens[4] + 1
                    cases: list[tuple[dict[str, int], list[list[Any]]]] = [
                        ({"startTime": inside_1}, every[2:]),
                        ({"startTime": opens[1]}, every[1:]),
                        ({"startTime": inside_1, "endTime": inside_4}, every[2:5]),
                        ({"endTime": inside_4}, every[:5]),
                        ({"startTime": inside_1, "endTime": opens[1] + 2}, []),
                    ]
                    for bounds, expected in cases:
                        assert await _klines(from_memory, interval, **bounds) == expected, (
                            interval, bounds)
                        assert await _klines(from_both, interval, **bounds) == expected, (
                            interval, bounds)
        finally:
            await projector.stop()

    asyncio.run(run())
