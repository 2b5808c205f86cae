"""`WebSocketGateway`: the node's WebSocket server (picows) on the `--ws` address.

Paths: `/ws`, `/ws/<names>` (Binance raw), `/stream`, `/stream?streams=a/b` (Binance combined),
`/v1/ws` (native); plain `GET /stats` and `/clients` answer JSON on the same port (and on the
HTTP port through `register`), and `/metrics` on the HTTP port gets the same figures.
Anything else is 404. picows was chosen by measurement (docs/adr/0002-websocket-server.md).

Per connection: ping/pong heartbeats (picows pings a silent peer every `heartbeat_s` and
drops it without a pong; client pings are answered), a message rate limit (the first excess
message in a second gets an error reply, the rest of that second are dropped), a
subscription limit, and a connection limit (past it, close 1013). The socket's write buffer
high-water mark (`write_high_water`) drives `Hub.paused`/`Hub.resumed`: the slow-consumer
policy is in `crossbook.gateway.ws.fanout`.

`start()` also runs the 100 ms tick (depth batching, stall sweep). Everything runs on the
sequencer's event loop: a sink call fans out synchronously, with no copy per subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, unquote

import msgspec
from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_create_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from crossbook.domain.rejects import Reject
from crossbook.gateway.context import GatewayContext
from crossbook.gateway.http import Request, Response, Router, json_response
from crossbook.gateway.views import GatewayViews
from crossbook.gateway.ws.binance import BinanceSession
from crossbook.gateway.ws.fanout import Client, Hub, Limits
from crossbook.gateway.ws.native import NativeSession
from crossbook.gateway.ws.publisher import Publisher
from crossbook.gateway.ws.user import UserEvents
from crossbook.marketdata.views import MarketData

log = logging.getLogger(__name__)
_encode = msgspec.json.Encoder().encode
TICK_S = 0.1
_TEXT, _BINARY, _CLOSE = WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CLOSE
"""Read per frame: module constants (an enum class attribute read goes through the metaclass's
hook on CPython 3.11)."""


_SHORT = struct.Struct("!BB").pack
_MEDIUM = struct.Struct("!BBH").pack
_LONG = struct.Struct("!BBQ").pack


def text_frame(payload: bytes) -> bytes:
    """One unmasked, final TEXT frame (RFC 6455 5.2): the same bytes for every subscriber, so
    the hub frames each message once and writes it to the sockets as it is."""
    size = len(payload)
    if size < 126:
        return _SHORT(0x81, size) + payload
    if size < 1 << 16:
        return _MEDIUM(0x81, 126, size) + payload
    return _LONG(0x81, 127, size) + payload


def _call_soon(callback: Callable[[], None]) -> object:
    return asyncio.get_running_loop().call_soon(callback)


def _call_later(delay: float, callback: Callable[[], None]) -> object:
    return asyncio.get_running_loop().call_later(delay, callback)


class _Sender:
    __slots__ = ("grace", "transport", "underlying")

    def __init__(self, transport: WSTransport, grace: float) -> None:
        self.transport = transport
        self.grace = grace
        self.underlying = transport.underlying_transport

    def write(self, frames: list[bytes]) -> None:
        """Frames built by `text_frame`, straight to the socket (one writev per call)."""
        underlying = self.underlying
        if not self.transport.is_close_frame_sent and not underlying.is_closing():
            underlying.writelines(frames)

    def close(self, code: int, reason: str) -> None:
        transport = self.transport
        transport.send_close(WSCloseCode(code), reason.encode())
        asyncio.get_running_loop().call_later(self.grace, transport.disconnect, False)

    def buffered(self) -> int:
        return int(self.transport.underlying_transport.get_write_buffer_size())


class _Listener(WSListener):
    def __init__(self, gateway: WebSocketGateway, kind: str, path: list[str],
                 combined: bool) -> None:
        self.gateway = gateway
        self.kind = kind
        self.path = path
        self.combined = combined
        self.client: Client | None = None
        self.session: BinanceSession | NativeSession | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        gateway = self.gateway
        hub = gateway.hub
        sender = _Sender(transport, hub.limits.close_grace_s)
        peer = transport.underlying_transport.get_extra_info("peername") or ("", 0)
        client = hub.connect(sender, f"{peer[0]}:{peer[1]}", self.kind)
        if client is None:
            sender.close(WSCloseCode.TRY_AGAIN_LATER.value, "too many connections")
            return
        underlying = transport.underlying_transport
        underlying.set_write_buffer_limits(high=hub.limits.write_high_water)
        sock = underlying.get_extra_info("socket")
        if hub.limits.send_buffer and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, hub.limits.send_buffer)
        self.client = client
        if self.kind == "native":
            self.session = NativeSession(gateway.context, hub, gateway.publisher, client)
        else:
            session = BinanceSession(hub, gateway.publisher, client, self.combined,
                                     gateway.account_of)
            session.open_path(self.path)
            self.session = session

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        client, session = self.client, self.session
        if client is None or session is None:
            return
        kind = frame.msg_type
        if kind is not _TEXT and kind is not _BINARY:
            if kind is _CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()
            return
        if not frame.fin:
            session_error(self, "fragmented messages are not supported")
            return
        if not (isinstance(session, NativeSession) and session.key is not None):
            hub = self.gateway.hub  # the message limit; signed-in order entry is exempt
            if not hub.allow_message(client):
                if client.window_count == hub.limits.max_messages_per_s + 1:
                    session_error(self, f"too many messages: at most "
                                        f"{hub.limits.max_messages_per_s} per second")
                return
        session.on_text(frame.get_payload_as_bytes(), frame.last_in_buffer)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self.client is not None:
            self.gateway.hub.disconnect(self.client)

    def pause_writing(self) -> None:
        if self.client is not None:
            self.gateway.hub.paused(self.client)

    def resume_writing(self) -> None:
        if self.client is not None and not self.client.closed:
            self.gateway.hub.resumed(self.client)


def session_error(listener: _Listener, message: str) -> None:
    session = listener.session
    if isinstance(session, BinanceSession):
        session.error(2, f"Invalid request: {message}", None)
    elif session is not None:
        session.error(None, Reject.GATEWAY_RATE_LIMITED, message)


class WebSocketGateway:
    def __init__(self, address: tuple[str, int], limits: Limits | None = None) -> None:
        self.address = address
        self.hub = Hub(limits, frame=text_frame, schedule=_call_soon, later=_call_later)
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.context: GatewayContext
        self.publisher: Publisher

    def folding(self, market: MarketData, views: GatewayViews) -> Publisher:
        """The sequencer sink to register in place of `market`: folds it, then fans out."""
        self.publisher = Publisher(self.hub, market, views, UserEvents(self.hub, views))
        return self.publisher

    def bind(self, context: GatewayContext) -> None:
        self.context = context
        context.metrics.registry.register(_Collector(self.hub))

    def account_of(self, listen_key: str) -> int | None:
        keys = getattr(self.context, "listen_keys", None)
        if keys is None:
            return None
        account: int | None = keys.account_of(listen_key, self.context.now_ms())
        return account

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self, sock: socket.socket | None = None) -> None:
        """Listen on `address`, or on `sock`, a listening socket shared with other processes
        (gateway workers)."""
        limits = self.hub.limits
        where: dict[str, Any] = {"sock": sock} if sock is not None else {
            "host": self.address[0], "port": self.address[1]}
        self._server = await ws_create_server(
            self._route, enable_auto_ping=True,
            auto_ping_idle_timeout=limits.heartbeat_s, auto_ping_reply_timeout=limits.heartbeat_s,
            max_frame_size=1 << 20, websocket_handshake_timeout=5, backlog=4096, **where,
        )
        self._ticker = asyncio.get_running_loop().create_task(self._tick())
        host, port = self._server.sockets[0].getsockname()[:2]
        log.info("websocket serving", extra={"fields": {"ws": f"ws://{host}:{port}"}})

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for client in list(self.hub.clients):
            self.hub.drop(client, "server shutting down", 1001)
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                self.publisher.tick()
                self.hub.sweep()
            except Exception:  # a bug here must not stop the ticker; the sink path is separate
                log.exception("websocket tick failed")

    # -- routing ------------------------------------------------------------------------------

    def _route(self, request: WSUpgradeRequest) -> Any:
        raw = request.path.decode("latin-1")
        path, _, query = raw.partition("?")
        if path in ("/stats", "/clients"):
            body = _encode(self.stats() if path == "/stats" else self.clients())
            return WSUpgradeResponseWithListener(WSUpgradeResponse.create_ok_response(
                body, {"Content-Type": "application/json"}), None)
        if path == "/v1/ws":
            return _Listener(self, "native", [], False)
        if path == "/ws" or path.startswith("/ws/"):
            names = [unquote(n) for n in path[4:].split("/") if n]
            return _Listener(self, "binance", names, False)
        if path in ("/stream", "/stream/"):
            streams = parse_qs(query).get("streams", [""])[0]
            return _Listener(self, "binance", [n for n in streams.split("/") if n], True)
        return None

    def register(self, router: Router, ctx: GatewayContext) -> None:
        """`GET /stats` and `/clients` on the HTTP port as well."""

        async def stats(request: Request) -> Response:
            return json_response(self.stats())

        async def clients(request: Request) -> Response:
            return json_response(self.clients())

        ops: dict[str, Any] = {"tags": ("websocket",)}
        router.add("GET", "/stats", stats, summary="WebSocket fan-out figures", **ops)
        router.add("GET", "/clients", clients, summary="WebSocket clients and queues", **ops)

    # -- figures ------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        s = self.hub.stats
        return {
            "connections": len(self.hub.clients), "topics": len(self.hub.topics),
            "messages": s.messages, "bytes": s.bytes, "published": s.published,
            "batches": s.batches,
            "average_batch_size": round(s.batch_updates / s.batches, 3) if s.batches else 0.0,
            "conflated": s.conflated, "resyncs": s.resyncs,
            "dropped_clients": s.dropped_clients, "connections_total": s.connections_total,
            "refused_connections": s.refused_connections, "bad_messages": s.bad_messages,
            "flushes": s.flushes, "writes": s.writes, "flush_s": round(s.flush_s, 6),
            "round_s": round(s.round_s, 6),
        }

    def clients(self) -> list[dict[str, Any]]:
        now = self.hub.clock()
        return [{
            "id": c.id, "peer": c.peer, "kind": c.kind, "subscriptions": len(c.topics),
            "queue": c.queued, "buffered_bytes": c.sender.buffered(),
            "lag_s": round(c.lag_s(now), 3), "conflated": len(c.conflated),
            "sent": c.sent, "received": c.received,
            "connected_s": round(time.time() - c.connected_at, 3),
        } for c in sorted(self.hub.clients, key=lambda c: c.id)]


class _Collector:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        s, hub = self.hub.stats, self.hub
        for name, value, text in (
            ("ws_messages", s.messages, "WebSocket messages sent (one per client)"),
            ("ws_published", s.published, "Updates encoded (one per topic)"),
            ("ws_batches", s.batches, "Durable batches fanned out"),
            ("ws_batch_updates", s.batch_updates, "Commands in the batches fanned out"),
            ("ws_conflated", s.conflated, "Depth diffs conflated for slow clients"),
            ("ws_dropped_clients", s.dropped_clients, "Clients dropped as slow or on close"),
            ("ws_bad_messages", s.bad_messages, "Incoming messages answered with an error"),
            ("ws_flushes", s.flushes, "Rounds of socket writes (one per client at most)"),
        ):
            yield CounterMetricFamily(f"crossbook_{name}", text, value=value)
        yield GaugeMetricFamily("crossbook_ws_connections", "Open WebSocket connections",
                                value=len(hub.clients))
        queue = GaugeMetricFamily("crossbook_ws_client_queue", "Queued messages per client",
                                  labels=["client"])
        lag = GaugeMetricFamily("crossbook_ws_client_lag_seconds",
                                "Seconds a client has not been reading", labels=["client"])
        now = hub.clock()
        for client in hub.clients:
            if client.queued or client.paused_at:
                queue.add_metric([str(client.id)], client.queued)
                lag.add_metric([str(client.id)], client.lag_s(now))
        yield queue
        yield lag

