"""Native `/v1/ws` connections: market data channels, login, user events and order entry.

The message schemas are `crossbook.protocol.ws`. Order entry goes to the sequencer without a
task per request: the commands of one socket read's requests (many when the client
pipelines) are queued and submitted together after its last message (or at the end of the
loop's turn, when that message never reaches the session), behind one future
(`submit_many`) whose callback renders every reply once the commands are durable and
applied and hands them to the hub in one call. So requests pipeline freely and replies come
in durable order with each request's `id`. A bus without `submit_many` (a gateway worker's)
gets one `submit` per command; so does a read's list when the inbox has no room for all of
it (as many as fit; each of the others is answered `GATEWAY_THROTTLED`). An engine
rejection replies with its reject code; a stopped sequencer with `GATEWAY_UNAVAILABLE`.

Rate limits: every order-entry request (place, amend, cancel, cancel_all) is charged to the
signed-in key in the process's one `RateLimiter`, which REST and binary order entry charge
too, as its REST route would be (`limits.ORDER_ENTRY_WEIGHT`; place and amend also count
one order). Over a budget it gets an error reply `GATEWAY_RATE_LIMITED` with the request's
`id` at once, never reaches the sequencer, and the connection stays open.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

import msgspec

from crossbook.domain import commands as cmd
from crossbook.domain import events as ev
from crossbook.domain.enums import Permission
from crossbook.domain.rejects import Reject
from crossbook.gateway.auth import KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from crossbook.gateway.context import BatchBus, GatewayContext
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
from crossbook.sequencer.loop import Outcome, SequencerError, Throttled
from crossbook.sequencer.ports import Applied

log = logging.getLogger(__name__)
_decode = msgspec.json.Decoder(wire.Request).decode
_encode = msgspec.json.Encoder().encode
_ORDERING = frozenset(("place", "amend"))
"""Order-entry ops that count as an order in the rate limits (cancels weigh only)."""
_PLACE = "place"
_ACCEPTED = ev.OrderAccepted


_Queued = tuple[Any, str, cmd.Command]
"""A request read this turn: its `id`, its op and its command, not submitted yet."""
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
        self._loop = asyncio.get_running_loop()
        bus = ctx.bus
        self._submit_many = bus.submit_many if isinstance(bus, BatchBus) else None
        self._queued: list[_Queued] = []
        self._backstop = False
        """`submit_queued` is scheduled for the end of the loop's turn."""

    def reply(self, request_id: Any, result: Any) -> None:
        self.hub.send(self.client, encode.reply(request_id, result))

    def error(self, request_id: Any, code: int, message: str) -> None:
        self.hub.stats.bad_messages += 1
        self.hub.send(self.client, encode.error_reply(request_id, code, message))

    def on_text(self, data: bytes, last: bool = True) -> None:
        """Handle one message; `last` says no other message of the same read follows (then the
        commands queued so far go to the sequencer now, else at the read's last message or, at
        the latest, the end of the loop's turn)."""
        try:
            request = _decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.error(None, Reject.GATEWAY_BAD_REQUEST, f"bad message: {exc}")
        else:
            try:
                self.dispatch(request)
            except ApiError as error:
                self.error(request.id, error.code, error.message)
        if self._queued:
            if last:
                self.submit_queued()
            elif not self._backstop:
                # picows answers a ping itself: a read's last frame may never reach us
                self._backstop = True
                self._loop.call_soon(self._end_of_turn)

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
        account = key.account
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
            self.queue(r.id, _PLACE, to_command(r.order, account, record))
            return
        if op == "cancel_all":
            symbol = instrument(self.ctx, r.symbol).instrument.symbol
            self.queue(r.id, op, cmd.CancelAllOrders(account, symbol))
            return
        order = None
        if r.order_id is not None:
            order = views.order(r.order_id)
        elif r.client_order_id is not None:
            order = views.order_by_client_id(account, r.client_order_id)
        if order is None or order.account != account:
            raise ApiError(404, Reject.UNKNOWN_ORDER, "no such order on this account")
        if op == "cancel":
            self.queue(r.id, op, cmd.CancelOrder(account, order.symbol, order.order_id))
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
        self.queue(r.id, op, cmd.AmendOrder(account, order.symbol, order.order_id, "", qty, price))

    def queue(self, request_id: Any, op: str, command: cmd.Command) -> None:
        """Queue a request's command for `submit_queued` (see `on_text`)."""
        self._queued.append((request_id, op, command))

    def _end_of_turn(self) -> None:
        self._backstop = False
        self.submit_queued()

    def submit_queued(self) -> None:
        """Submit the commands queued this turn, in order: behind one future when the bus takes
        a list, else (or when the inbox has no room for all) one by one."""
        queued, self._queued = self._queued, []
        if not queued:
            return
        submit_many = self._submit_many
        if submit_many is not None:
            try:
                future = submit_many([command for _, _, command in queued])
            except Throttled:
                pass  # not room for all: as many as fit, one by one
            except SequencerError as exc:
                for request_id, _, _ in queued:
                    self.error(request_id, Reject.GATEWAY_UNAVAILABLE, f"not accepting: {exc}")
                return
            else:
                future.add_done_callback(partial(self.settled, queued))
                return
        for request_id, op, command in queued:
            try:
                single = self.ctx.bus.submit(command)
            except Throttled as exc:
                self.error(request_id, Reject.GATEWAY_THROTTLED, f"inbox full, retry: {exc}")
            except SequencerError as exc:
                self.error(request_id, Reject.GATEWAY_UNAVAILABLE, f"not accepting: {exc}")
            else:
                single.add_done_callback(partial(self.done, request_id, op))

    def settled(self, queued: list[_Queued], future: asyncio.Future[list[Outcome]]) -> None:
        """Reply to a turn's requests once all their commands are settled, in one hand-over."""
        if self.client.closed or future.cancelled():
            return
        replies = []
        answer = self.answer
        for (request_id, op, _), outcome in zip(queued, future.result(), strict=True):
            if type(outcome) is Applied:
                try:
                    replies.append(answer(request_id, op, outcome))
                except Exception:  # a bug costs its own reply, not the other ones of the read
                    log.exception("rendering a websocket reply failed")
            else:
                self.hub.stats.bad_messages += 1
                replies.append(encode.error_reply(
                    request_id, Reject.GATEWAY_UNAVAILABLE, f"outcome unknown: {outcome}"))
        self.hub.send_many(self.client, replies)

    def done(self, request_id: Any, op: str, future: asyncio.Future[Applied]) -> None:
        if self.client.closed:
            return
        exc = future.exception()
        if exc is not None:
            self.error(request_id, Reject.GATEWAY_UNAVAILABLE, f"outcome unknown: {exc}")
            return
        self.hub.send(self.client, self.answer(request_id, op, future.result()))

    def answer(self, request_id: Any, op: str, applied: Applied) -> bytes:
        """The reply to a request whose command was applied: its result or its rejection."""
        events = applied.events
        if op == _PLACE and type(first := events[0]) is _ACCEPTED:
            # The engine decides a rejection before any change: an accepted order's events
            # hold no rejection, so there is nothing to scan for.
            assert isinstance(first, ev.OrderAccepted)
            return encode.reply(request_id, render.placed(
                first, events, applied.ts, self.ctx.views.instruments[first.symbol]))
        error = render.first_reject(events)
        if error is not None:
            self.hub.stats.bad_messages += 1
            return encode.error_reply(request_id, error.code, error.message)
        views = self.ctx.views
        command = applied.command
        result: Any
        if op == "cancel_all":
            assert isinstance(command, cmd.CancelAllOrders)
            result = {"symbol": command.symbol,
                      "canceled": [e.order_id for e in events if isinstance(e, ev.OrderCanceled)]}
        else:
            assert isinstance(command, cmd.CancelOrder | cmd.AmendOrder)
            order = views.order(command.order_id)
            result = None if order is None else render.order(
                order, views.instruments[order.symbol])
        return encode.reply(request_id, result)
