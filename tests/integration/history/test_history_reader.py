"""The gateway's history reader against the market data views on the same records: candles
of every interval read from the database equal the in-memory ones (taker-buy split aside),
and fills come back with their orders' client ids."""

from __future__ import annotations

import asyncio
from pathlib import Path

from crossbook.gateway.history import HistoryReader, merge_candles
from crossbook.history.projector import Projector
from crossbook.history.sqlite import SqliteStore
from crossbook.marketdata.views import MarketData
from crossbook.marketdata.views.candles import INTERVALS
from crossbook.sequencer.ports import Applied
from tests.support.history_workload import batches, records


def test_reader_candles_and_fills_match_memory(tmp_path: Path) -> None:
    # a few ms apart, stretched to about 10 days: many minutes, hours, days and two weeks
    raw = records(3_000)
    base = raw[0].ts
    stream = [Applied(a.seq, base + (a.ts - base) * 100_000, a.command, a.events) for a in raw]
    market = MarketData(candle_history=100_000)
    market.on_batch(stream)

    async def run() -> None:
        store = SqliteStore(tmp_path / "h.sqlite3")
        projector = Projector(store, chunk_commands=500)
        await projector.start()
        for part in batches(stream):
            projector.on_batch(part)
        await projector.flush()
        reader = HistoryReader(store)
        try:
            for symbol in market.symbols():
                for interval in INTERVALS:
                    memory = market.klines(symbol, interval, limit=1000)
                    stored = await reader.klines(symbol, interval, limit=1000)
                    assert stored == memory, (symbol, interval)
                    if len(memory) > 2:  # from a start time, and memory that begins later
                        start = memory[1].open_time
                        assert await reader.klines(symbol, interval, start=start,
                                                   limit=2) == memory[1:3]  # fmt: skip
                        assert merge_candles(stored[:2], memory[1:]) == memory
            account = 1
            fills = await reader.fills(account, limit=1000)
            assert fills
            assert all(f.client_order_id is not None for f in fills)
            newest = await reader.fills(account, limit=5, newest_first=True)
            assert [f.trade_id for f in newest] == sorted(
                (f.trade_id for f in fills), reverse=True)[:5]  # fmt: skip
        finally:
            await projector.stop()

    asyncio.run(run())
