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
  oldest messages are dropped and `Reconnected` is queued so that books resync), or, when
  the stream is built with `on_message`, handed to that callback as they arrive.
- `request(op, **fields)` sends one request with a fresh `id` and returns its `result`, or
  raises `ApiError` with the server's code (`place`, `cancel`, `amend`, `cancel_all`, `ping`);
  `TimeoutError` when no answer came within `request_timeout`. `send(op, fields, answered)`
  is the same without a future: `answered(result, error)` is called once, with `error` an
  `ApiError`, a `TransportError` (connection lost) or a `TimeoutError`. Requests pipeline:
  any number may be in flight.
- `login` signs `timestamp + "GET" + "/v1/ws"` with the native HMAC scheme.

The connection is picows (the server's WebSocket library, Cython): a frame is handed over
as bytes in one callback and a request is one synchronous write, which costs a load
generator a fraction of what a pure-Python WebSocket client does per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Self

import msgspec
from picows import WSError, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

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
_decode = msgspec.json.decode
Answered = Callable[[Any, BaseException | None], None]
"""`(result, None)` for an answer, `(None, error)` for a refusal, a lost connection or a
timeout."""


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


class _Listener(WSListener):
    """Hands each complete text message of the connection to its `Stream`."""

    def __init__(self, stream: Stream) -> None:
        super().__init__()
        self.stream = stream
        self.parts: list[bytes] = []

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind in (WSMsgType.TEXT, WSMsgType.BINARY):
            if frame.fin:
                self.stream._dispatch(frame.get_payload_as_bytes())
            else:
                self.parts = [frame.get_payload_as_bytes()]
        elif kind == WSMsgType.CONTINUATION:
            self.parts.append(frame.get_payload_as_bytes())
            if frame.fin:
                raw, self.parts = b"".join(self.parts), []
                self.stream._dispatch(raw)
        elif kind == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.stream._lost(transport)


class Stream:
    def __init__(
        self, url: str, *, api_key: str | None = None, secret: str | None = None,
        min_delay: float = 0.1, max_delay: float = 5.0, max_queue: int = 10_000,
        request_timeout: float = 10.0,
        on_message: Callable[[Message | Reconnected], None] | None = None,
    ) -> None:
        self.url = url
        self.api_key, self.secret = api_key, secret
        self.min_delay, self.max_delay = min_delay, max_delay
        self.request_timeout = request_timeout
        self.subscriptions: list[Subscription] = []
        self.connections = 0
        self._queue: asyncio.Queue[Message | Reconnected] = asyncio.Queue(max_queue)
        self._on_message = on_message
        self._ids = itertools.count(1)
        self._pending: dict[int, Answered] = {}
        self._deadlines: deque[tuple[float, int]] = deque()
        self._transport: WSTransport | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._expiry: asyncio.Task[None] | None = None
        self._closed = False

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, wait: bool = True) -> None:
        """Start connecting; with `wait`, until connected (`TransportError` after
        `request_timeout`)."""
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run())
            self._expiry = loop.create_task(self._expire())
        if wait:
            try:
                await asyncio.wait_for(self._connected.wait(), self.request_timeout)
            except TimeoutError:
                raise TransportError(f"cannot connect to {self.url}", sent=False) from None

    async def close(self) -> None:
        self._closed = True
        if self._transport is not None:
            self._transport.disconnect()
        for task in (self._task, self._expiry):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._expiry = None

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
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def answered(result: Any, error: BaseException | None) -> None:
            if future.done():
                return
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)

        self.send(op, fields, answered)
        return await future

    def send(self, op: str, fields: dict[str, Any], answered: Answered) -> None:
        """Send one request; `answered` is called once with its outcome. Raises
        `TransportError` (nothing sent) when not connected."""
        transport = self._transport
        if transport is None:
            raise TransportError("not connected", sent=False)
        request_id = next(self._ids)
        self._pending[request_id] = answered
        self._deadlines.append((time.monotonic() + self.request_timeout, request_id))
        transport.send(WSMsgType.TEXT, _encode({"op": op, "id": request_id, **fields}))

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
        if self._on_message is not None:
            self._on_message(item)
            return
        if self._queue.full():
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(Reconnected(self.connections))
        self._queue.put_nowait(item)

    def _dispatch(self, raw: bytes) -> None:
        data = _decode(raw)
        if not isinstance(data, dict):
            return
        channel = data.get("channel")
        if channel is not None:
            kind = CHANNELS.get(channel)
            if kind is not None:
                self._deliver(msgspec.convert(data, kind))
            return
        answered = self._pending.pop(data.get("id"), None)  # type: ignore[arg-type]
        if answered is None:
            return
        error = data.get("error")
        if error:
            answered(None, api_error(400, int(error.get("code", 0)),
                                     str(error.get("message", ""))))
        else:
            answered(data.get("result"), None)

    def _lost(self, transport: WSTransport) -> None:
        """The connection dropped: its requests fail now, not at their timeout."""
        if transport is self._transport:
            self._fail_pending(TransportError("connection lost", sent=True))

    def _fail_pending(self, error: BaseException) -> None:
        pending, self._pending = self._pending, {}
        self._deadlines.clear()
        for answered in pending.values():
            answered(None, error)

    async def _expire(self) -> None:
        """Fail requests unanswered after `request_timeout` (one timer for all of them)."""
        deadlines = self._deadlines
        while True:
            await asyncio.sleep(min(1.0, self.request_timeout / 4))
            now = time.monotonic()
            while deadlines and deadlines[0][0] <= now:
                answered = self._pending.pop(deadlines.popleft()[1], None)
                if answered is not None:
                    answered(None, TimeoutError(f"no answer in {self.request_timeout} s"))

    async def _run(self) -> None:
        delay = self.min_delay
        while not self._closed:
            try:
                transport, _ = await ws_connect(
                    lambda: _Listener(self), self.url, websocket_handshake_timeout=5,
                    max_frame_size=1 << 30,
                )
            except (OSError, WSError, TimeoutError):
                transport = None
            if transport is not None:
                self._transport = transport
                try:
                    self.connections += 1
                    self._deliver(Reconnected(self.connections))
                    await self._setup()
                    self._connected.set()
                    delay = self.min_delay
                    await transport.wait_disconnected()
                except (TransportError, ApiError, TimeoutError):
                    pass
                finally:
                    transport.disconnect()
                    self._transport = None
                    self._connected.clear()
                    self._fail_pending(TransportError("connection lost", sent=True))
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
