"""The WebSocket SDK against a running node: channels, the user stream and order entry, the
local book in sync (also across forced gaps and a node restart)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

import pytest

from crossbook.client import AsyncClient, LiveBook, Reconnected, RejectedError, Stream
from crossbook.domain.rejects import Reject
from crossbook.protocol import ws
from tests.e2e.clients.conftest import Trader
from tests.support.node import NodeProcess


async def _until(predicate: Callable[[], bool], seconds: float = 10.0) -> None:
    """Poll a condition that other tasks make true (no event to wait on)."""
    async with asyncio.timeout(seconds):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def _pump(stream: Stream, book: LiveBook, drop: set[int] | None = None) -> None:
    """Feed the book; drop the depth updates whose ordinal is in `drop` (forced gaps)."""
    seen = 0
    async for message in stream:
        if isinstance(message, ws.DepthMessage) and message.type == "update":
            seen += 1
            if drop and seen in drop:
                continue
        if book.feed(message):
            await book.resync()


async def _same_as_rest(book: LiveBook, rest: AsyncClient) -> None:
    depth = await rest.depth(book.symbol, 1000)
    await _until(lambda: book.sync.synced and book.sync.last_update_id >= depth.last_update_id)
    assert book.sync.last_update_id == depth.last_update_id
    assert book.sync.bids() == [(Decimal(p), Decimal(q)) for p, q in depth.bids]
    assert book.sync.asks() == [(Decimal(p), Decimal(q)) for p, q in depth.asks]


def test_book_stays_in_sync_across_forced_gaps(
    url: str, ws_url: str, make_trader: Callable[..., Trader]
) -> None:
    t = make_trader()

    async def scenario() -> None:
        async with AsyncClient(url, api_key=t.key, secret=t.secret) as rest, \
                Stream(ws_url) as stream:
            book = LiveBook(stream, rest, "BTC-USDT")
            await book.start()
            pump = asyncio.create_task(_pump(stream, book, drop={2, 5, 6}))
            await _until(lambda: book.sync.synced)
            for i in range(1, 6):  # one durable batch, so one depth update, each
                await rest.place_order("BTC-USDT", "buy", "limit", "0.01", 30000 - i * 10)
                await rest.place_order("BTC-USDT", "sell", "limit", "0.01", 30000 + i * 10)
            await rest.place_order("BTC-USDT", "sell", "market", "0.015")
            await _same_as_rest(book, rest)
            assert book.sync.gaps >= 2
            assert book.resyncs >= 2
            pump.cancel()

    asyncio.run(scenario())


def test_trades_ticker_candles_and_user_channels(
    url: str, ws_url: str, make_trader: Callable[..., Trader]
) -> None:
    maker, taker = make_trader(), make_trader()

    async def scenario() -> None:
        async with AsyncClient(url, api_key=taker.key, secret=taker.secret) as t, \
                Stream(ws_url, api_key=maker.key, secret=maker.secret) as stream:
            for channel in ("trades", "ticker", "book_ticker"):
                await stream.subscribe(channel, "ETH-USDT")  # type: ignore[arg-type]
            await stream.subscribe("candles", "ETH-USDT", interval="1m")
            await stream.subscribe("user")
            placed = await stream.request("place", order={
                "symbol": "ETH-USDT", "side": "sell", "type": "limit", "quantity": "1",
                "price": "2500", "client_order_id": "ws-1"})
            assert placed["status"] == "new"
            await t.place_order("ETH-USDT", "buy", "market", "0.25")
            kinds: dict[type[object], object] = {}
            async with asyncio.timeout(10):
                while not {ws.TradeMessage, ws.TickerMessage, ws.CandleMessage,
                           ws.OrderEvent, ws.BalanceEvent} <= set(kinds):
                    message = await stream.next()
                    kinds.setdefault(type(message), message)
            trade = kinds[ws.TradeMessage]
            assert isinstance(trade, ws.TradeMessage)
            assert (trade.price, trade.quantity, trade.taker_side) == ("2500.00", "0.2500", "buy")
            event = kinds[ws.OrderEvent]
            assert isinstance(event, ws.OrderEvent)
            assert event.client_order_id == "ws-1"
            with pytest.raises(RejectedError) as refused:
                await stream.request("cancel", symbol="ETH-USDT", order_id=987654)
            assert refused.value.code is Reject.UNKNOWN_ORDER
            assert await stream.request("ping") == "pong"

    asyncio.run(scenario())


def test_stream_reconnects_and_the_book_resyncs_after_a_restart(
    node: NodeProcess, url: str, ws_url: str, make_trader: Callable[..., Trader]
) -> None:
    t = make_trader()

    async def scenario() -> None:
        async with AsyncClient(url, api_key=t.key, secret=t.secret) as rest, \
                Stream(ws_url, min_delay=0.05, max_delay=0.2) as stream:
            book = LiveBook(stream, rest, "ETH-USDT")
            await book.start()
            pump = asyncio.create_task(_pump(stream, book))
            await rest.place_order("ETH-USDT", "buy", "limit", "1", "1000")
            await _same_as_rest(book, rest)
            await asyncio.to_thread(node.restart)
            await _until(lambda: stream.connections >= 2 and stream.connected, 30)
            await rest.place_order("ETH-USDT", "buy", "limit", "1", "1001")
            await _same_as_rest(book, rest)
            pump.cancel()

    asyncio.run(scenario())
    assert isinstance(Reconnected(1), Reconnected)
