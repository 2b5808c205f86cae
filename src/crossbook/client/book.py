"""A local order book kept in sync over the WebSocket `depth` channel.

`BookSync(symbol)` is the pure part: feed it `DepthMessage`s (`on_message`) and stream
`Reconnected` markers (`on_reconnected`). It wraps `crossbook.protocol.localbook.LocalBook`
with `Decimal` prices and quantities:

- a `snapshot` message (the first after subscribing, or `resync: true` after the server
  conflated a slow client's diffs) replaces the book;
- `update`s must chain (`first_update_id == previous last_update_id + 1`); any other one is a
  gap: the book is discarded, `needs_snapshot` becomes true and `gaps` counts it;
- `apply_snapshot(depth)` applies a REST `/v1/depth` snapshot (the Binance procedure: diffs
  received meanwhile are buffered and replayed); a snapshot older than the buffered diffs is
  `STALE` and another must be fetched.

`LiveBook(stream, client, symbol)` is the driver: it subscribes, feeds every depth message
of its symbol to a `BookSync`, and on a gap fetches a REST snapshot through the
`AsyncClient` (retrying while stale), so that `book.bids()`/`asks()` are always either in
sync or `synced` is false. `resyncs` counts the snapshots it had to fetch.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from crossbook.client.rest import AsyncClient
from crossbook.client.stream import Message, Reconnected, Stream
from crossbook.protocol import native, ws
from crossbook.protocol.localbook import DiffResult, LocalBook, SnapshotResult

Level = tuple[Decimal, Decimal]


def _levels(raw: list[tuple[str, str]]) -> list[Level]:
    return [(Decimal(price), Decimal(qty)) for price, qty in raw]


class BookSync:
    def __init__(self, symbol: str, max_buffer: int = 10_000) -> None:
        self.symbol = symbol
        self.book: LocalBook[Decimal, Decimal] = LocalBook(max_buffer)
        self.needs_snapshot = True
        self.gaps = 0
        self.updates = 0

    @property
    def synced(self) -> bool:
        return self.book.synced

    @property
    def last_update_id(self) -> int:
        return self.book.last_update_id

    def bids(self, limit: int | None = None) -> list[Level]:
        return self.book.bids(limit)

    def asks(self, limit: int | None = None) -> list[Level]:
        return self.book.asks(limit)

    def on_reconnected(self) -> None:
        """The stream was cut: wait for the new subscription's snapshot."""
        self.book = LocalBook(self.book._buffer.maxlen or 10_000)
        self.needs_snapshot = True

    def on_message(self, message: ws.DepthMessage) -> DiffResult | SnapshotResult:
        if message.type == "snapshot":
            self.book = LocalBook(self.book._buffer.maxlen or 10_000)
            return self._snapshot(message.last_update_id, message.bids, message.asks)
        self.updates += 1
        result = self.book.on_diff(message.first_update_id, message.last_update_id,
                                   _levels(message.bids), _levels(message.asks))
        if result is DiffResult.GAP:
            self.gaps += 1
            self.needs_snapshot = True
        return result

    def apply_snapshot(self, depth: native.Depth) -> SnapshotResult:
        return self._snapshot(depth.last_update_id, depth.bids, depth.asks)

    def _snapshot(self, last_update_id: int, bids: list[tuple[str, str]],
                  asks: list[tuple[str, str]]) -> SnapshotResult:
        result = self.book.apply_snapshot(last_update_id, _levels(bids), _levels(asks))
        self.needs_snapshot = result is not SnapshotResult.SYNCED
        return result


class LiveBook:
    def __init__(self, stream: Stream, client: AsyncClient, symbol: str,
                 depth_limit: int = 5000) -> None:
        self.stream, self.client, self.symbol = stream, client, symbol
        self.sync = BookSync(symbol)
        self.depth_limit = depth_limit
        self.resyncs = 0
        self.changed = asyncio.Event()

    async def start(self) -> None:
        await self.stream.subscribe("depth", self.symbol)

    def feed(self, message: Message | Reconnected) -> bool:
        """Give one stream message; true when the book needs a REST snapshot."""
        if isinstance(message, Reconnected):
            self.sync.on_reconnected()
            return False
        if isinstance(message, ws.DepthMessage) and message.symbol == self.symbol:
            result = self.sync.on_message(message)
            self.changed.set()
            return result is DiffResult.GAP
        return False

    async def resync(self, attempts: int = 20) -> bool:
        """Fetch REST snapshots until one applies (diffs keep buffering meanwhile)."""
        for _ in range(attempts):
            self.resyncs += 1
            depth = await self.client.depth(self.symbol, self.depth_limit)
            if self.sync.apply_snapshot(depth) is SnapshotResult.SYNCED:
                self.changed.set()
                return True
            await asyncio.sleep(0.05)
        return False

    async def run(self) -> None:
        """Consume the stream forever (cancel to stop)."""
        await self.start()
        async for message in self.stream:
            if self.feed(message):
                await self.resync()
