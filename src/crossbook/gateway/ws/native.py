"""Native `/v1/ws` connections: market data channels, login, user events and order entry.

The message schemas are `crossbook.protocol.ws`. Order entry goes straight to the
sequencer's `submit` (no task per request): each request's future gets a callback that
replies once the command is durable and applied, so requests pipeline freely and replies
come in durable order with the request's `id`. An engine rejection replies with its reject
code; a full inbox with `GATEWAY_THROTTLED`.

Rate limits: every order-entry request (place, amend, cancel, cancel_all) is charged to the
signed-in key in the process's one `RateLimiter`, which REST and binary order entry charge
too, as its REST route would be (`limits.ORDER_ENTRY_WEIGHT`; place and amend also count
one order). Over a budget it gets an error reply `GATEWAY_RATE_LIMITED` with the request's
`id` at once, never reaches the sequencer, and the connection stays open.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from crossbook.domain import commands as cmd
from crossbook.domain import events as ev
from crossbook.domain.enums import Permission
from crossbook.domain.rejects import Reject
from crossbook.domain.values import AccountId, Lots, OrderId, Ticks
from crossbook.gateway.auth import KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from crossbook.gateway.context import GatewayContext
from crossbook.gateway.http import ApiError, Request
from crossbook.gateway.limits import ORDER_ENTRY_WEIGHT
from crossbook.gateway.native import render
from crossbook.gateway.native.orders import instrument, to_command
from crossbook.gateway.views import KeyRecord
from crossbook.gateway.ws import encode
from crossbook.gateway.ws.fanout import Client, Hub, Mode, Topic
from crossbook.gateway.ws.publisher import Publisher
from crossbook.marketdata.views import INTERVALS
from crossbook.protocol import ws as wire
from crossbook.protocol.decimals import DecimalError
from crossbook.sequencer.loop import SequencerError, Throttled
from crossbook.sequencer.ports import Applied

_decode = msgspec.json.Decoder(wire.Request).decode
_encode = msgspec.json.Encoder().encode
_ORDERING = frozenset(("place", "amend"))
"""Order-entry ops that count as an order in the rate limits (cancels weigh only)."""
_MARKET_MODES = {"trades": Mode.APPEND, "candles": Mode.APPEND, "book_ticker": Mode.REPLACE,
                 "ticker": Mode.REPLACE}


class NativeSession:
    def __init__(self, ctx: GatewayContext, hub: Hub, publisher: Publisher,
                 client: Client) -> None:
        self.ctx = ctx
        self.hub = hub
        self.publisher = publisher
        self.client = client
        self.key: KeyRecord | None = None
        self._trader: KeyRecord | None = None
        """The live key record last found to hold TRADE (records are replaced, never
        changed in place, so the same record still holds it)."""

    def reply(self, request_id: Any, result: Any) -> None:
        self.hub.send(self.client, encode.reply(request_id, result))

    def error(self, request_id: Any, code: int, message: str) -> None:
        self.hub.stats.bad_messages += 1
        self.hub.send(self.client, encode.error_reply(request_id, code, message))

    def on_text(self, data: bytes) -> None:
        try:
            request = _decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.error(None, Reject.GATEWAY_BAD_REQUEST, f"bad message: {exc}")
            return
        try:
            self.dispatch(request)
        except ApiError as error:
            self.error(request.id, error.code, error.message)

    def dispatch(self, r: wire.Request) -> None:
        op = r.op
        if op == "ping":
            self.reply(r.id, "pong")
        elif op in ("subscribe", "unsubscribe"):
            topic = self.topic(r)
            if op == "unsubscribe":
                self.hub.unsubscribe(self.client, topic.name)
            elif not self.hub.subscribe(self.client, topic):
                raise ApiError(400, Reject.GATEWAY_BAD_REQUEST, "too many subscriptions")
            self.reply(r.id, f"{op}d")
            if op == "subscribe" and r.channel == "depth":
                symbol = topic.name.split(":")[1]
                scales = self.ctx.views.instruments[symbol].scales
                snap = self.ctx.market.depth(symbol, None)
                self.hub.send(self.client, encode.n_snapshot(symbol, scales, snap))
        elif op == "login":
            self.login(r)
        else:
            self.order_entry(r)

    def topic(self, r: wire.Request) -> Topic:
        channel = r.channel
        if channel is None:
            raise ApiError(400, Reject.GATEWAY_BAD_REQUEST, "channel is required")
        if channel == "user":
            key = self.signed_in(Permission.READ)
            return self.hub.topic(f"user:{key.account}", Mode.APPEND)
        symbol = instrument(self.ctx, r.symbol).instrument.symbol
        if symbol not in self.ctx.market.symbols():
            self.ctx.market.restore_book(symbol, 0, [], [])
        if channel == "depth":
            name = f"depth:{symbol}:{r.speed}"
            return self.publisher.depth_topic(name, symbol, binance=False)
        if channel == "candles":
            if r.interval not in INTERVALS:
                raise ApiError(400, Reject.GATEWAY_BAD_REQUEST,
                               f"interval must be one of {', '.join(INTERVALS)}")
            return self.hub.topic(f"candles:{symbol}:{r.interval}", Mode.APPEND)
        return self.hub.topic(f"{channel}:{symbol}", _MARKET_MODES[channel])

    def login(self, r: wire.Request) -> None:
        if r.key is None or r.timestamp is None or r.signature is None:
            raise ApiError(400, Reject.GATEWAY_BAD_REQUEST,
                           "login needs key, timestamp and signature")
        request = Request("GET", "/v1/ws", b"", {
            KEY_HEADER: r.key.encode(), TIMESTAMP_HEADER: str(r.timestamp).encode(),
            SIGNATURE_HEADER: r.signature.encode(),
        }, b"", self.client.peer, {}, {})
        self.key = self.ctx.auth.authenticate(request, Permission.READ)
        self.client.login = self.key.key
        self.reply(r.id, {"account": self.key.account})

    def signed_in(self, permission: Permission) -> KeyRecord:
        key = self.key
        if key is None:
            raise ApiError(401, Reject.GATEWAY_UNAUTHORIZED, "log in first (op: login)")
        live = self.ctx.views.keys.get(key.key)
        if live is None:
            raise ApiError(401, Reject.GATEWAY_UNAUTHORIZED, "the API key was revoked")
        if not live.permissions & permission:
            raise ApiError(403, Reject.GATEWAY_FORBIDDEN,
                           f"this key lacks the {str(permission.name).lower()} permission")
        return live

    # -- order entry --------------------------------------------------------------------------

    def trading_key(self) -> KeyRecord:
        """`signed_in(Permission.TRADE)`, checking the permission once per key record."""
        key = self.key
        live = None if key is None else self.ctx.views.keys.get(key.key)
        if live is None or live is not self._trader:
            live = self._trader = self.signed_in(Permission.TRADE)
        return live

    def order_entry(self, r: wire.Request) -> None:
        key = self.trading_key()
        account = AccountId(key.account)
        views = self.ctx.views
        op = r.op
        refused = self.ctx.limits.spend_key(
            key.key, ORDER_ENTRY_WEIGHT, 1 if op in _ORDERING else 0
        )
        if refused is not None:
            self.error(r.id, refused.code, refused.message)
            return
        if op == "place":
            if r.order is None:
                raise ApiError(400, Reject.GATEWAY_BAD_REQUEST, "place needs an order")
            record = instrument(self.ctx, r.order.symbol)
            self.submit(r.id, to_command(r.order, account, record), "place")
            return
        if op == "cancel_all":
            symbol = instrument(self.ctx, r.symbol).instrument.symbol
            self.submit(r.id, cmd.CancelAllOrders(account, symbol), op)
            return
        order = None
        if r.order_id is not None:
            order = views.order(r.order_id)
        elif r.client_order_id is not None:
            order = views.order_by_client_id(account, r.client_order_id)
        if order is None or order.account != account:
            raise ApiError(404, Reject.UNKNOWN_ORDER, "no such order on this account")
        if op == "cancel":
            self.submit(r.id, cmd.CancelOrder(account, order.symbol, OrderId(order.order_id)),
                        op)
            return
        scales = views.instruments[order.symbol].scales
        qty = scales.quantity.parse(r.quantity) if r.quantity else 0
        price = scales.price.parse(r.price) if r.price else 0
        for value in (qty, price):
            if isinstance(value, DecimalError):
                raise ApiError(400, value.code, value.message)
        assert isinstance(qty, int)
        assert isinstance(price, int)
        if not qty and not price:
            raise ApiError(400, Reject.GATEWAY_BAD_REQUEST, "give quantity and/or price")
        self.submit(r.id, cmd.AmendOrder(account, order.symbol, OrderId(order.order_id), "",
                                         Lots(qty), Ticks(price)), op)

    def submit(self, request_id: Any, command: cmd.Command, op: str) -> None:
        try:
            future = self.ctx.bus.submit(command)
        except Throttled as exc:
            raise ApiError(503, Reject.GATEWAY_THROTTLED, f"inbox full, retry: {exc}") from None
        except SequencerError as exc:
            raise ApiError(503, Reject.GATEWAY_UNAVAILABLE, f"not accepting: {exc}") from None
        future.add_done_callback(lambda done: self.done(request_id, op, done))

    def done(self, request_id: Any, op: str, future: asyncio.Future[Applied]) -> None:
        if self.client.closed:
            return
        exc = future.exception()
        if exc is not None:
            self.error(request_id, Reject.GATEWAY_UNAVAILABLE, f"outcome unknown: {exc}")
            return
        applied = future.result()
        events = applied.events
        views = self.ctx.views
        if op == "place" and type(events[0]) is ev.OrderAccepted:
            # The engine decides a rejection before any change: an accepted order's events
            # hold no rejection, so there is nothing to scan for.
            first = events[0]
            assert isinstance(first, ev.OrderAccepted)
            record = views.instruments[first.symbol]
            self.hub.send(self.client, encode.reply(
                request_id, render.placed(first, events, applied.ts, record)))
            return
        error = render.first_reject(events)
        if error is not None:
            self.error(request_id, error.code, error.message)
            return
        result: Any
        if op == "cancel_all":
            command = applied.command
            assert isinstance(command, cmd.CancelAllOrders)
            result = {"symbol": command.symbol,
                      "canceled": [e.order_id for e in events if isinstance(e, ev.OrderCanceled)]}
        else:
            command = applied.command
            assert isinstance(command, cmd.CancelOrder | cmd.AmendOrder)
            order = views.order(command.order_id)
            result = None if order is None else render.order(
                order, views.instruments[order.symbol])
        self.hub.send(self.client, encode.reply(request_id, result))
