"""A gateway worker process: the REST gateway in front of a core process, as a binary client.

Started by the core (`crossbook serve --workers N`, `crossbook.cluster`) as
`python -m crossbook.worker`, with the shared listening socket's fd and the privileged
worker key in its environment. It

1. connects to the core's feed (`DATA_DIR/feed.sock`) and loads the pickled durable views
   (`GatewayViews`, `MarketData`) from its `FeedHello`, then folds every `FeedBatch` into
   them, so reads, signatures and rate limits are served locally from exact durable state;
2. logs in to the core's binary socket (`DATA_DIR/binary.sock`) with the worker key and
   sends every order, cancel, amend and cancel-all as a binary request naming the account;
3. serves the same app as the core (`crossbook.node.registrars`) with the core's HTTP server
   (`crossbook.gateway.server`) on the inherited socket, reading the node's history database
   (`CROSSBOOK_WORKER_HISTORY`, the core's `--history` target) past the views as the core does;
4. serves WebSocket streams and WebSocket order entry (`crossbook.gateway.ws`) on the second
   inherited socket (`CROSSBOOK_WORKER_WS_FD`): its publisher folds every durable batch after
   the views, exactly as the core's does, so its streams carry the same update ids;
5. keeps a copy of the core's listen keys (`FeedKeyState`) for the WebSocket user-data streams
   it serves, and sends create, keepalive and close to the core (`RemoteListenKeyOps`).

`RemoteBus.submit(command)` is the `CommandBus` the routes use: the future resolves with the
command's own `Applied`, found in the feed by the origin `(session_id, request_id)`, after the
views folded that batch (a GET after a POST sees the order). A gateway-level refusal
(`GATEWAY_THROTTLED`, `GATEWAY_UNAVAILABLE`) answered on the binary session fails it at once
with the sequencer's error type, and a lost connection fails it with `Unavailable` (outcome
unknown, exactly like a core that stopped). Admin commands go over the feed socket.

The worker exits when the feed closes (the core stopped); the core starts it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import pickle
import socket
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import msgspec

from crossbook import __version__
from crossbook.client.binary import BinaryClient, ConnectionLost
from crossbook.cluster import (
    BINARY_SOCKET,
    FEED_SOCKET,
    FeedAnswer,
    FeedBatch,
    FeedCommand,
    FeedHello,
    FeedKeyAnswer,
    FeedKeyRequest,
    FeedKeyState,
    frame,
    read_frame,
)
from crossbook.config import LimitsConfig
from crossbook.domain import commands as cmd
from crossbook.domain.rejects import Reject
from crossbook.gateway.app import build_app
from crossbook.gateway.context import GatewayContext
from crossbook.gateway.history import HistoryReader
from crossbook.gateway.limits import LimitConfig, RateLimiter
from crossbook.gateway.listen_keys import ListenKey, ListenKeys
from crossbook.gateway.metrics import Metrics
from crossbook.gateway.views import GatewayViews
from crossbook.gateway.ws import Limits, WebSocketGateway
from crossbook.gc_policy import tune_gc
from crossbook.history import open_store
from crossbook.history.process import open_reader
from crossbook.marketdata.views import MarketData
from crossbook.node import configure_logging, registrars
from crossbook.protocol.binary_messages import (
    Amend,
    Cancel,
    CancelAll,
    NewOrder,
    RejectedReport,
    Report,
    Request,
)
from crossbook.sequencer.loop import Throttled, Unavailable
from crossbook.sequencer.ports import Applied

log = logging.getLogger("crossbook.worker")


def to_request(command: cmd.Command, request_id: int) -> Request | None:
    """The binary request for a trading command (None for any other command)."""
    kind = type(command)
    if kind is cmd.PlaceOrder:
        assert isinstance(command, cmd.PlaceOrder)
        c = command
        return NewOrder(
            request_id, c.symbol, c.side, c.type, c.qty, c.price, c.tif, c.quote_qty,
            c.stop_price, c.expire_ts, c.post_only, c.visible_qty, c.stp, c.client_order_id,
            c.account,
        )
    if kind is cmd.CancelOrder:
        assert isinstance(command, cmd.CancelOrder)
        return Cancel(
            request_id, command.symbol, command.order_id, command.client_order_id,
            command.account,
        )
    if kind is cmd.AmendOrder:
        assert isinstance(command, cmd.AmendOrder)
        return Amend(
            request_id, command.symbol, command.order_id, command.client_order_id, command.qty,
            command.price, command.account,
        )
    if kind is cmd.CancelAllOrders:
        assert isinstance(command, cmd.CancelAllOrders)
        return CancelAll(request_id, command.symbol, command.account)
    return None


class RemoteListenKeyOps:
    """Listen-key changes made on the core's registry over the feed (`ListenKeyOps`)."""

    def __init__(self, writer: asyncio.StreamWriter, keys: ListenKeys) -> None:
        self.writer = writer
        self.keys = keys
        self.waiting: dict[int, asyncio.Future[FeedKeyAnswer]] = {}
        self._ids = itertools.count(1)

    async def create(self, account: int, api_key: str) -> str:
        return (await self._ask("create", account, api_key=api_key)).key

    async def keepalive(self, key: str, account: int) -> bool:
        return (await self._ask("keepalive", account, key=key)).ok

    async def close(self, key: str, account: int) -> bool:
        return (await self._ask("close", account, key=key)).ok

    async def _ask(
        self, op: str, account: int, *, api_key: str = "", key: str = ""
    ) -> FeedKeyAnswer:
        if self.writer.is_closing():
            raise Unavailable("the core process is gone")
        request_id = next(self._ids)
        future: asyncio.Future[FeedKeyAnswer] = asyncio.get_running_loop().create_future()
        self.waiting[request_id] = future
        self.writer.write(frame(FeedKeyRequest(request_id, op, account, api_key, key)))
        return await future

    def fold(self, message: FeedKeyState | FeedKeyAnswer) -> None:
        if isinstance(message, FeedKeyState):
            self.keys.mirror(ListenKey(
                message.key, message.account, message.api_key, message.expires_ms))
            return
        future = self.waiting.pop(message.id, None)
        if future is not None and not future.done():
            future.set_result(message)

    def fail_all(self) -> None:
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(Unavailable("the core process is gone"))
        self.waiting.clear()


class RemoteBus:
    """The `CommandBus` of a worker: binary requests for trading, the feed for the rest."""

    def __init__(
        self, client: BinaryClient, writer: asyncio.StreamWriter, views: GatewayViews,
        market: MarketData, publish: Callable[[Sequence[Applied]], None] | None = None,
    ) -> None:
        self.client = client
        self.writer = writer
        self.views = views
        self.market = market
        self.publish = market.on_batch if publish is None else publish
        """Folds the market data views (and, with WebSocket streams, fans the batch out)."""
        self.waiting: dict[int, asyncio.Future[Applied]] = {}
        self.admin: dict[int, asyncio.Future[Applied]] = {}
        self._ids = itertools.count(1)
        self.feed_alive = True

    @property
    def healthy(self) -> bool:
        return self.feed_alive and self.client.error is None

    def submit(self, command: cmd.Command) -> asyncio.Future[Applied]:
        if not self.feed_alive:
            raise Unavailable("the core process is gone")
        future: asyncio.Future[Applied] = asyncio.get_running_loop().create_future()
        request_id = self.client.next_request_id()
        request = to_request(command, request_id)
        if request is None:
            self.admin[request_id] = future
            self.writer.write(frame(FeedCommand(request_id, command)))
            return future
        try:
            self.client.send(request, partial(self._answered, request_id))
        except Exception as exc:  # not connected (reconnecting): nothing was sent
            raise Unavailable(f"no connection to the core: {exc}") from None
        self.waiting[request_id] = future
        return future

    def _answered(self, request_id: int, report: Report | ConnectionLost) -> None:
        waiting = self.waiting
        if isinstance(report, ConnectionLost):
            future = waiting.pop(request_id, None)
            if future is not None and not future.done():
                future.set_exception(Unavailable(f"outcome unknown: {report}"))
            return
        if isinstance(report, RejectedReport) and report.code >= Reject.GATEWAY_THROTTLED:
            future = waiting.pop(request_id, None)
            if future is not None and not future.done():
                error = Throttled if report.code == Reject.GATEWAY_THROTTLED else Unavailable
                future.set_exception(error(report.message))

    def fold(self, message: FeedBatch | FeedAnswer) -> None:
        if isinstance(message, FeedAnswer):
            future = self.admin.pop(message.id, None)
            if future is not None and not future.done():
                if message.applied is None:
                    future.set_exception(Unavailable(message.message))
                else:
                    future.set_result(message.applied)
            return
        batch = message.applied
        self.views.on_batch(batch)
        self.publish(batch)
        session_id, waiting = self.client.session_id, self.waiting
        for index, origin_session, request_id in message.origins:
            if origin_session == session_id:
                future = waiting.pop(request_id, None)
                if future is not None and not future.done():
                    future.set_result(batch[index])

    def fail_all(self) -> None:
        self.feed_alive = False
        for future in [*self.waiting.values(), *self.admin.values()]:
            if not future.done():
                future.set_exception(Unavailable("the core process is gone"))
        self.waiting.clear()
        self.admin.clear()


async def run_worker(
    data_dir: Path, key: str, secret: str, fd: int, limits: LimitsConfig, history: str = "",
    ws_fd: int | None = None, ws_limits: Limits | None = None,
) -> int:
    from crossbook.gateway.server import HttpServer  # noqa: PLC0415 (only when serving)

    reader, writer = await asyncio.open_unix_connection(
        str(data_dir / FEED_SOCKET), limit=1 << 26
    )
    hello = await read_frame(reader)
    assert isinstance(hello, FeedHello)
    views, market = pickle.loads(hello.state)  # our own core, 0600 socket
    assert isinstance(views, GatewayViews)
    assert isinstance(market, MarketData)
    client = BinaryClient(key, secret.encode(), path=str(data_dir / BINARY_SOCKET))
    await client.connect()
    websocket = None if ws_fd is None else WebSocketGateway(("", 0), ws_limits)
    publish = None if websocket is None else websocket.folding(market, views).on_batch
    bus = RemoteBus(client, writer, views, market, publish)
    metrics = Metrics()
    metrics.healthy = lambda: bus.healthy
    limiter = RateLimiter(LimitConfig(**{
        name: getattr(limits, name) for name in LimitConfig.__dataclass_fields__
    }), lambda: time.time_ns() // 1_000_000)
    context = GatewayContext(
        bus=bus, views=views, market=market, limits=limiter, metrics=metrics,
        info={"version": __version__, "role": "gateway worker",
              "process": f"gateway worker {os.environ.get('CROSSBOOK_WORKER', '?')}"},
    )
    listen_keys = RemoteListenKeyOps(writer, context.listen_keys)
    context.listen_key_ops = listen_keys
    for state in hello.keys:
        listen_keys.fold(state)
    store = open_store(history, pool_size=2) if history else None
    reopen: asyncio.Task[None] | None = None
    if store is not None:  # the node's history database, read past the views like the core
        context.history = HistoryReader(store)
        reopen = await open_reader(store)
    if websocket is None:
        app = build_app(context, registrars())
    else:
        websocket.bind(context)
        app = build_app(context, [*registrars(), websocket.register])
    tune_gc()
    sock = socket.socket(fileno=fd)
    server = HttpServer(app.handle, metrics, sock=sock)  # the core's server, see docs/adr/0001
    if websocket is not None:
        await websocket.start(sock=socket.socket(fileno=ws_fd))

    async def follow() -> None:
        try:
            while True:
                message = await read_frame(reader)
                if isinstance(message, FeedBatch | FeedAnswer):
                    bus.fold(message)
                elif isinstance(message, FeedKeyState | FeedKeyAnswer):
                    listen_keys.fold(message)
        except (asyncio.IncompleteReadError, ConnectionError, msgspec.DecodeError) as exc:
            log.warning("feed closed, stopping: %r", exc)
        finally:
            bus.fail_all()
            listen_keys.fail_all()
            server.exit()

    feed = asyncio.get_running_loop().create_task(follow())
    try:
        await server.serve()
    finally:
        feed.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feed
        if websocket is not None:
            await websocket.close()
        await client.close()
        writer.close()
        if reopen is not None:
            reopen.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reopen
        if store is not None:
            with contextlib.suppress(Exception):
                await store.close()
    return 0


def main() -> int:
    import uvloop  # noqa: PLC0415

    env = os.environ
    configure_logging(env.get("CROSSBOOK_LOG_LEVEL", "INFO"))
    limits = msgspec.json.decode(env.get("CROSSBOOK_WORKER_LIMITS", "{}"), type=LimitsConfig)
    ws_fd = env.get("CROSSBOOK_WORKER_WS_FD")
    return uvloop.run(run_worker(
        Path(env["CROSSBOOK_DATA_DIR"]), env["CROSSBOOK_WORKER_KEY"],
        env["CROSSBOOK_WORKER_SECRET"], int(env["CROSSBOOK_WORKER_FD"]), limits,
        env.get("CROSSBOOK_WORKER_HISTORY", ""),
        None if ws_fd is None else int(ws_fd), Limits.from_env(env),
    ))


if __name__ == "__main__":
    sys.exit(main())
