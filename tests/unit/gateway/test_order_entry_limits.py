"""One per-key rate-limit policy on every order-entry path, without sockets: REST
(`charge_key`), native WebSocket (`NativeSession`) and binary (`BinaryConnection`) charge
the same `RateLimiter`, an over-limit request is answered at once with
`GATEWAY_RATE_LIMITED` and never reaches the bus, and the session stays usable."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, cast

import msgspec
import pytest

from crossbook.domain import commands as cmd
from crossbook.domain.enums import OrderType, Permission, Side
from crossbook.domain.instruments import Asset, Instrument
from crossbook.domain.rejects import Reject
from crossbook.domain.values import AccountId, Lots, OrderId, Ticks
from crossbook.gateway.binary.server import BinaryConnection, BinaryServer
from crossbook.gateway.context import GatewayContext
from crossbook.gateway.http import ApiError
from crossbook.gateway.limits import LimitConfig, RateLimited, RateLimiter
from crossbook.gateway.views import GatewayViews, KeyRecord
from crossbook.gateway.ws.fanout import Hub, Limits
from crossbook.gateway.ws.native import NativeSession
from crossbook.gateway.ws.publisher import Publisher
from crossbook.marketdata.views import MarketData
from crossbook.protocol.binary import FrameDecoder, encode
from crossbook.protocol.binary_messages import (
    SERVER_MESSAGES,
    Amend,
    Cancel,
    CancelAll,
    NewOrder,
    RejectedReport,
)
from crossbook.sequencer.ports import Applied

SYMBOL = "BTC-USD"
KEY = KeyRecord("trader-key", b"secret", 7, Permission.READ | Permission.TRADE)
WORKER = KeyRecord("worker-key", b"secret", 0, Permission.ADMIN | Permission.TRADE)


class Bus:
    """Records what reaches the sequencer; futures stay pending."""

    def __init__(self) -> None:
        self.commands: list[cmd.Command] = []

    @property
    def healthy(self) -> bool:
        return True

    def submit(self, command: cmd.Command) -> asyncio.Future[Applied]:
        self.commands.append(command)
        return asyncio.get_running_loop().create_future()


def limiter(orders_per_10s: int = 3, weight_per_minute: int = 0) -> RateLimiter:
    now = [10_000 * 1_000]
    return RateLimiter(LimitConfig(key_orders_per_10s=orders_per_10s,
                                   key_weight_per_minute=weight_per_minute), lambda: now[0])


def views() -> GatewayViews:
    result = GatewayViews()
    result.seed_instrument(Instrument.create(SYMBOL, Asset("BTC", 0), Asset("USD", 0), "1", "1"),
                           False)
    for key in (KEY, WORKER):
        result.keys[key.key] = key
    return result


class Transport:
    def __init__(self) -> None:
        self.data = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.data += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0


def binary_connection(bus: Bus, limits: RateLimiter | None, key: KeyRecord = KEY) -> tuple[
        BinaryConnection, Transport]:
    server = BinaryServer(bus, views().keys, limits=limits)
    connection = BinaryConnection(server)
    transport = Transport()
    connection.connection_made(cast(asyncio.Transport, transport))
    session = server.registry.open(key, 0)
    session.outbox = connection
    connection.session = session
    return connection, transport


async def written(transport: Transport) -> list[Any]:
    await asyncio.sleep(0)  # the connection flushes on the next loop turn
    messages, error = FrameDecoder(accept=SERVER_MESSAGES).feed(transport.data)
    assert error is None
    transport.data = b""
    return list(messages)


def new_order(request_id: int, account: int = 0) -> NewOrder:
    return NewOrder(request_id, SYMBOL, Side.BUY, OrderType.LIMIT, Lots(1), Ticks(10),
                    account=AccountId(account))


def test_spend_key_refuses_with_a_value_and_counts_nothing_refused() -> None:
    limits = limiter(orders_per_10s=2, weight_per_minute=3)
    assert limits.spend_key("k", 1, 1) is None
    assert limits.spend_key("k", 1, 1) is None
    refused = limits.spend_key("k", 1, 1)
    assert isinstance(refused, RateLimited)
    assert refused.code == Reject.GATEWAY_RATE_LIMITED
    assert refused.retry_after_s == 10
    assert "2 orders per 10 s" in refused.message
    assert refused.error().status == 429
    # the refused order was not counted: one request of weight is still left
    assert limits.spend_key("k", 1, 0) is None
    weight = limits.spend_key("k", 1, 0)
    assert weight is not None
    assert "request weight per minute" in weight.message
    assert limits.spend_key("other", 1, 1) is None  # budgets are per key


def test_rest_websocket_and_binary_orders_count_together_for_one_key() -> None:
    limits = limiter(orders_per_10s=3)

    async def scenario() -> None:
        bus = Bus()
        headers = dict(limits.charge_key(KEY.key, 1, 1))  # one REST order
        assert headers[b"x-cb-order-count-10s"] == b"1"
        ws, replies = native_session(bus, limits)
        ws.on_text(json.dumps({"op": "place", "id": "w1", "order": {
            "symbol": SYMBOL, "side": "buy", "type": "limit", "price": "10",
            "quantity": "1"}}).encode())
        connection, transport = binary_connection(bus, limits)
        connection.data_received(encode(new_order(1)))
        assert len(bus.commands) == 2  # the WebSocket and the first binary order
        connection.data_received(encode(new_order(2)))
        ws.on_text(json.dumps({"op": "place", "id": "w2", "order": {
            "symbol": SYMBOL, "side": "buy", "type": "limit", "price": "10",
            "quantity": "1"}}).encode())
        assert len(bus.commands) == 2  # both over the limit: refused before the bus
        (report,) = await written(transport)
        assert isinstance(report, RejectedReport)
        assert (report.request_id, report.code) == (2, Reject.GATEWAY_RATE_LIMITED)
        assert report.seq == 1
        assert not transport.closed
        assert replies() == [{"id": "w2", "error": {
            "code": Reject.GATEWAY_RATE_LIMITED,
            "message": "rate limit exceeded: 3 orders per 10 s; retry in 10 s"}}]
        with pytest.raises(ApiError) as rest:
            limits.charge_key(KEY.key, 1, 1)
        assert rest.value.code == Reject.GATEWAY_RATE_LIMITED
        # cancels weigh but count no order, so they still pass the order budget
        connection.data_received(encode(Cancel(3, SYMBOL, OrderId(5))))
        connection.data_received(encode(CancelAll(4, SYMBOL)))
        assert [type(c) for c in bus.commands[2:]] == [cmd.CancelOrder, cmd.CancelAllOrders]
        connection.data_received(encode(Amend(5, SYMBOL, OrderId(5), qty=Lots(1))))
        (amend,) = await written(transport)
        assert isinstance(amend, RejectedReport)
        assert (amend.request_id, amend.code) == (5, Reject.GATEWAY_RATE_LIMITED)

    asyncio.run(scenario())


def test_binary_cancels_are_weighed_like_their_rest_routes() -> None:
    limits = limiter(orders_per_10s=0, weight_per_minute=2)

    async def scenario() -> None:
        bus = Bus()
        connection, transport = binary_connection(bus, limits)
        for request_id in (1, 2, 3):
            connection.data_received(encode(Cancel(request_id, SYMBOL, OrderId(5))))
        assert len(bus.commands) == 2
        (report,) = await written(transport)
        assert isinstance(report, RejectedReport)
        assert (report.request_id, report.code) == (3, Reject.GATEWAY_RATE_LIMITED)

    asyncio.run(scenario())


def test_worker_requests_for_other_accounts_are_not_charged_again() -> None:
    limits = limiter(orders_per_10s=1)

    async def scenario() -> None:
        bus = Bus()
        connection, _ = binary_connection(bus, limits, key=WORKER)
        for request_id in range(1, 6):
            connection.data_received(encode(new_order(request_id, account=KEY.account)))
        assert len(bus.commands) == 5
        assert limits.spend_key(WORKER.key, 1, 1) is None  # nothing was charged to it

    asyncio.run(scenario())


def test_binary_without_a_limiter_charges_nothing() -> None:
    async def scenario() -> None:
        bus = Bus()
        connection, _ = binary_connection(bus, None)
        for request_id in range(1, 201):
            connection.data_received(encode(new_order(request_id)))
        assert len(bus.commands) == 200

    asyncio.run(scenario())


class _Sender:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def write(self, frames: list[bytes]) -> None:
        self.frames.extend(frames)

    def close(self, code: int, reason: str) -> None:
        raise AssertionError(f"closed {code} {reason}")

    def buffered(self) -> int:
        return 0


def native_session(bus: Bus, limits: RateLimiter) -> tuple[NativeSession, Callable[[], Any]]:
    """A signed-in `/v1/ws` session and a function giving the replies written so far."""
    scheduled: list[Callable[[], None]] = []
    hub = Hub(Limits(), frame=lambda payload: payload, schedule=scheduled.append)
    sender = _Sender()
    client = hub.connect(sender, "127.0.0.1:1", "native")
    assert client is not None
    context = GatewayContext(bus=bus, views=views(), market=MarketData(), limits=limits)
    session = NativeSession(context, hub, cast(Publisher, None), client)
    session.key = KEY

    def replies() -> list[Any]:
        while scheduled:
            scheduled.pop(0)()
        out = [msgspec.json.decode(frame) for frame in sender.frames]
        sender.frames.clear()
        return out

    return session, replies


def test_spend_key_with_every_key_budget_off_counts_nothing() -> None:
    limits = RateLimiter(LimitConfig(key_weight_per_minute=0, key_orders_per_10s=0,
                                     key_orders_per_day=0), lambda: 0)
    for _ in range(1_000):
        assert limits.spend_key("k", 1, 1) is None
    assert dict(limits.charge_key("k", 1, 1))[b"x-cb-order-count-10s"] == b"1"
