"""WebSocket client of the native channels (`/v1/ws`, `crossbook.protocol.ws`).

    async with Stream("ws://127.0.0.1:8001/v1/ws") as stream:
        await stream.subscribe("trades", "BTC-USDT")
        async for message in stream:          # TradeMessage, DepthMessage, ..., Reconnected
            ...

Contract:

- `Stream` keeps one connection open in a background task and reconnects by itself with
  exponential backoff (`min_delay` .. `max_delay`). After every (re)connection it logs in
  again when it has a key and re-sends every subscription, then yields `Reconnected` so that
  consumers know a gap may have happened (a depth subscription starts with a snapshot).
- Data messages are decoded into the typed structs of `crossbook.protocol.ws` by their
  `channel` (`depth`, `trades`, `book_ticker`, `ticker`, `candles`, `orders`, `balances`)
  and delivered in order through `async for` (a bounded queue: `max_queue`; when full, the
  oldest messages are dropped and `Reconnected` is queued so that books resync).
- `request(op, **fields)` sends one request with a fresh `id` and returns its `result`, or
  raises `ApiError` with the server's code (`place`, `cancel`, `amend`, `cancel_all`, `ping`).
- `login` signs `timestamp + "GET" + "/v1/ws"` with the native HMAC scheme.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Self

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from crossbook.client.calls import sign
from crossbook.client.errors import ApiError, TransportError, api_error
from crossbook.protocol import ws

CHANNELS: dict[str, type[Any]] = {
    "depth": ws.DepthMessage,
    "trades": ws.TradeMessage,
    "book_ticker": ws.BookTickerMessage,
    "ticker": ws.TickerMessage,
    "candles": ws.CandleMessage,
    "orders": ws.OrderEvent,
    "balances": ws.BalanceEvent,
}
Message = (
    ws.DepthMessage | ws.TradeMessage | ws.BookTickerMessage | ws.TickerMessage
    | ws.CandleMessage | ws.OrderEvent | ws.BalanceEvent
)
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Reconnected:
    """The connection was (re)established, or messages were lost: resync local state."""

    attempt: int


@dataclass(frozen=True, slots=True)
class Subscription:
    channel: ws.Channel
    symbol: str | None = None
    speed: str = "realtime"
    interval: str | None = None

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"channel": self.channel}
        if self.symbol is not None:
            out["symbol"] = self.symbol
        if self.channel == "depth":
            out["speed"] = self.speed
        if self.interval is not None:
            out["interval"] = self.interval
        return out


class Stream:
    def __init__(
        self, url: str, *, api_key: str | None = None, secret: str | None = None,
        min_delay: float = 0.1, max_delay: float = 5.0, max_queue: int = 10_000,
        request_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.api_key, self.secret = api_key, secret
        self.min_delay, self.max_delay = min_delay, max_delay
        self.request_timeout = request_timeout
        self.subscriptions: list[Subscription] = []
        self.connections = 0
        self._queue: asyncio.Queue[Message | Reconnected] = asyncio.Queue(max_queue)
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._socket: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, wait: bool = True) -> None:
        """Start connecting; with `wait`, until connected (`TransportError` after
        `request_timeout`)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        if wait:
            try:
                await asyncio.wait_for(self._connected.wait(), self.request_timeout)
            except TimeoutError:
                raise TransportError(f"cannot connect to {self.url}", sent=False) from None

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._socket is not None:
            await self._socket.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # -- requests ---------------------------------------------------------------------------

    async def subscribe(self, channel: ws.Channel, symbol: str | None = None, *,
                        speed: str = "realtime", interval: str | None = None) -> None:
        sub = Subscription(channel, symbol, speed, interval)
        if sub not in self.subscriptions:
            self.subscriptions.append(sub)
        if self.connected:
            await self.request("subscribe", **sub.fields())

    async def unsubscribe(self, channel: ws.Channel, symbol: str | None = None, *,
                          speed: str = "realtime", interval: str | None = None) -> None:
        sub = Subscription(channel, symbol, speed, interval)
        if sub in self.subscriptions:
            self.subscriptions.remove(sub)
        if self.connected:
            await self.request("unsubscribe", **sub.fields())

    async def request(self, op: str, **fields: Any) -> Any:
        socket = self._socket
        if socket is None:
            raise TransportError("not connected", sent=False)
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await socket.send(_encode({"op": op, "id": request_id, **fields}).decode())
            return await asyncio.wait_for(future, self.request_timeout)
        except (WebSocketException, OSError) as exc:
            raise TransportError(f"{op}: {exc}", sent=True) from None
        finally:
            self._pending.pop(request_id, None)

    def login_fields(self) -> dict[str, Any]:
        assert self.api_key
        assert self.secret
        ts = time.time_ns() // 1_000_000
        return {"key": self.api_key, "timestamp": ts,
                "signature": sign(self.secret, ts, "GET", "/v1/ws", b"")}

    # -- delivery ---------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Message | Reconnected]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message | Reconnected]:
        while True:
            yield await self._queue.get()

    async def next(self) -> Message | Reconnected:
        return await self._queue.get()

    def _deliver(self, item: Message | Reconnected) -> None:
        if self._queue.full():
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(Reconnected(self.connections))
        self._queue.put_nowait(item)

    def _dispatch(self, raw: str | bytes) -> None:
        data = msgspec.json.decode(raw)
        if not isinstance(data, dict):
            return
        channel = data.get("channel")
        if channel is not None:
            kind = CHANNELS.get(channel)
            if kind is not None:
                self._deliver(msgspec.convert(data, kind))
            return
        future = self._pending.get(data.get("id"))  # type: ignore[arg-type]
        if future is None or future.done():
            return
        error = data.get("error")
        if error:
            future.set_exception(api_error(400, int(error.get("code", 0)),
                                           str(error.get("message", ""))))
        else:
            future.set_result(data.get("result"))

    async def _run(self) -> None:
        delay = self.min_delay
        while not self._closed:
            try:
                async with connect(self.url, open_timeout=5, max_size=None,
                                   compression=None, proxy=None) as socket:
                    self._socket = socket
                    reader = asyncio.get_running_loop().create_task(self._read(socket))
                    try:
                        self.connections += 1
                        self._deliver(Reconnected(self.connections))
                        await self._setup()
                        self._connected.set()
                        delay = self.min_delay
                        await reader
                    finally:
                        reader.cancel()
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await reader
            except (OSError, WebSocketException, TimeoutError, TransportError, ApiError):
                pass
            finally:
                self._socket = None
                self._connected.clear()
                for future in self._pending.values():
                    if not future.done():
                        future.set_exception(TransportError("connection lost", sent=True))
            if self._closed:
                break
            await asyncio.sleep(delay)
            delay = min(self.max_delay, delay * 2)

    async def _setup(self) -> None:
        if self.api_key and self.secret:
            await self.request("login", **self.login_fields())
        index = 0
        while index < len(self.subscriptions):  # subscriptions added meanwhile included
            await self.request("subscribe", **self.subscriptions[index].fields())
            index += 1

    async def _read(self, socket: ClientConnection) -> None:
        async for raw in socket:
            self._dispatch(raw)
