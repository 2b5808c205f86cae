"""Native `/v1/ws` order entry without sockets: the requests of one read go to the sequencer
behind one `submit_many` and are answered in order, each with its request's `id`; a read whose
last frame never reaches the session is submitted at the end of the loop's turn; a full inbox
takes as many as fit, one by one, and answers the others `GATEWAY_THROTTLED`; a stopped
sequencer answers each `GATEWAY_UNAVAILABLE`; a bus without `submit_many` gets one `submit`
per command; `Hub.send_many` queues like `send` while a client is paused."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any, cast

import msgspec

from crossbook.domain import commands as cmd
from crossbook.domain import events as ev
from crossbook.domain.enums import Permission
from crossbook.domain.instruments import Asset, Instrument
from crossbook.domain.rejects import Reject
from crossbook.domain.values import OrderId
from crossbook.gateway.context import GatewayContext
from crossbook.gateway.limits import LimitConfig, RateLimiter
from crossbook.gateway.views import GatewayViews, KeyRecord
from crossbook.gateway.ws.fanout import Hub, Limits
from crossbook.gateway.ws.native import NativeSession
from crossbook.gateway.ws.publisher import Publisher
from crossbook.marketdata.views import MarketData
from crossbook.sequencer.loop import Outcome, SequencerError, Throttled, Unavailable
from crossbook.sequencer.ports import Applied

SYMBOL = "BTC-USD"
KEY = KeyRecord("trader-key", b"secret", 7, Permission.READ | Permission.TRADE)


class Bus:
    """Takes single commands (`submit`), up to `room` of them; futures settle on `settle`."""

    def __init__(self, room: int = 1_000) -> None:
        self.room = room
        self.stopped = False
        self.singles: list[tuple[cmd.Command, asyncio.Future[Applied]]] = []
        self.seq = 0

    @property
    def healthy(self) -> bool:
        return not self.stopped

    def _admit(self, count: int) -> None:
        if self.stopped:
            raise Unavailable("sequencer stopped")
        if count > self.room:
            raise Throttled("inbox full")
        self.room -= count

    def submit(self, command: cmd.Command) -> asyncio.Future[Applied]:
        self._admit(1)
        future: asyncio.Future[Applied] = asyncio.get_running_loop().create_future()
        self.singles.append((command, future))
        return future

    def applied(self, command: cmd.Command) -> Applied:
        """Accept a place whose price is not 13, reject the others; cancels succeed."""
        self.seq += 1
        events: list[ev.Event]
        if isinstance(command, cmd.PlaceOrder) and command.price != 13:
            events = [ev.OrderAccepted(
                OrderId(self.seq), command.account, command.symbol, command.side,
                command.type, command.qty, command.price, command.tif, command.quote_qty,
                command.stop_price, command.expire_ts, command.post_only, command.visible_qty,
                command.stp, command.client_order_id, True)]
        elif isinstance(command, cmd.PlaceOrder):
            events = [ev.OrderRejected(command.account, command.symbol,
                                       command.client_order_id, Reject.INVALID_PRICE, "13")]
        else:
            events = []
        return Applied(self.seq, 1_700_000_000_000_000_000, command, events)

    def settle(self) -> None:
        for command, future in self.singles:
            future.set_result(self.applied(command))
        self.singles.clear()


class BatchBus(Bus):
    """Also takes lists (`submit_many`), all or nothing."""

    def __init__(self, room: int = 1_000) -> None:
        super().__init__(room)
        self.lists: list[tuple[list[cmd.Command], asyncio.Future[list[Outcome]]]] = []

    def submit_many(self, commands: Sequence[cmd.Command]) -> asyncio.Future[list[Outcome]]:
        self._admit(len(commands))
        future: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        self.lists.append((list(commands), future))
        return future

    def settle(self) -> None:
        for commands, future in self.lists:
            future.set_result([self.applied(c) for c in commands])
        self.lists.clear()
        super().settle()


class _Sender:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def write(self, frames: list[bytes]) -> None:
        self.frames.extend(frames)

    def close(self, code: int, reason: str) -> None:
        pass

    def buffered(self) -> int:
        return 0


def session(bus: Bus) -> tuple[NativeSession, Callable[[], list[Any]], Hub]:
    """A signed-in session and a function giving the replies written so far."""
    hub = Hub(Limits(), frame=lambda payload: payload,
              schedule=lambda callback: asyncio.get_running_loop().call_soon(callback))
    sender = _Sender()
    client = hub.connect(sender, "127.0.0.1:1", "native")
    assert client is not None
    views = GatewayViews()
    views.seed_instrument(Instrument.create(SYMBOL, Asset("BTC", 0), Asset("USD", 0), "1", "1"),
                          False)
    views.keys[KEY.key] = KEY
    limits = RateLimiter(LimitConfig(0, 0, 0, 0, 0, 0), lambda: 0)
    context = GatewayContext(bus=bus, views=views, market=MarketData(), limits=limits)
    native = NativeSession(context, hub, cast(Publisher, None), client)
    native.key = KEY

    def replies() -> list[Any]:
        out = [msgspec.json.decode(frame) for frame in sender.frames]
        sender.frames.clear()
        return out

    return native, replies, hub


def place(request_id: int, price: int = 10) -> bytes:
    return json.dumps({"op": "place", "id": request_id, "order": {
        "symbol": SYMBOL, "side": "buy", "type": "limit", "price": str(price),
        "quantity": "1"}}).encode()


async def turn() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


def test_a_read_goes_in_behind_one_future_and_is_answered_in_order() -> None:
    async def scenario() -> None:
        bus = BatchBus()
        native, replies, _ = session(bus)
        native.on_text(place(1), last=False)
        native.on_text(place(2, price=13), last=False)
        native.on_text(b"{not json", last=False)  # answered at once, in its place
        native.on_text(place(3), last=True)
        assert [len(c) for c, _ in bus.lists] == [3]
        assert not bus.singles
        await turn()
        (bad,) = replies()
        assert bad["error"]["code"] == Reject.GATEWAY_BAD_REQUEST
        bus.settle()
        await turn()
        first, second, third = replies()
        assert (first["id"], first["result"]["status"]) == (1, "new")
        assert first["result"]["price"] == "10"
        assert (second["id"], second["error"]["code"]) == (2, Reject.INVALID_PRICE)
        assert third["id"] == 3
        assert third["result"]["order_id"] == 3

    asyncio.run(scenario())


def test_a_read_whose_last_frame_never_arrives_goes_in_at_the_end_of_the_turn() -> None:
    async def scenario() -> None:
        bus = BatchBus()
        native, replies, _ = session(bus)
        native.on_text(place(1), last=False)
        native.on_text(place(2), last=False)  # the read's last frame was a ping
        assert not bus.lists
        await turn()
        assert [len(c) for c, _ in bus.lists] == [2]
        bus.settle()
        await turn()
        assert [r["id"] for r in replies()] == [1, 2]

    asyncio.run(scenario())


def test_a_full_inbox_takes_what_fits_and_refuses_the_rest() -> None:
    async def scenario() -> None:
        bus = BatchBus(room=2)
        native, replies, _ = session(bus)
        for request_id in (1, 2, 3):
            native.on_text(place(request_id), last=request_id == 3)
        assert not bus.lists
        assert len(bus.singles) == 2
        await turn()
        (throttled,) = replies()
        assert (throttled["id"], throttled["error"]["code"]) == (3, Reject.GATEWAY_THROTTLED)
        bus.settle()
        await turn()
        assert [(r["id"], r["result"]["status"]) for r in replies()] == [(1, "new"), (2, "new")]

    asyncio.run(scenario())


def test_a_stopped_sequencer_answers_each_request_unavailable() -> None:
    async def scenario() -> None:
        bus = BatchBus()
        bus.stopped = True
        native, replies, _ = session(bus)
        native.on_text(place(1), last=False)
        native.on_text(place(2))
        await turn()
        assert [(r["id"], r["error"]["code"]) for r in replies()] == [
            (1, Reject.GATEWAY_UNAVAILABLE), (2, Reject.GATEWAY_UNAVAILABLE)]

    asyncio.run(scenario())


def test_a_failed_command_of_a_list_is_answered_unavailable_and_the_others_normally() -> None:
    async def scenario() -> None:
        bus = BatchBus()
        native, replies, _ = session(bus)
        native.on_text(place(1), last=False)
        native.on_text(place(2))
        (commands, future), = bus.lists
        outcome: list[Outcome] = [bus.applied(commands[0]), SequencerError("disk gone")]
        future.set_result(outcome)
        await turn()
        first, second = replies()
        assert first["result"]["status"] == "new"
        assert (second["id"], second["error"]["code"]) == (2, Reject.GATEWAY_UNAVAILABLE)

    asyncio.run(scenario())


def test_a_bus_without_lists_gets_one_submit_per_command() -> None:
    async def scenario() -> None:
        bus = Bus()
        native, replies, _ = session(bus)
        native.on_text(place(1), last=False)
        native.on_text(place(2))
        assert len(bus.singles) == 2
        bus.settle()
        await turn()
        assert [r["id"] for r in replies()] == [1, 2]

    asyncio.run(scenario())


def test_replies_to_a_paused_client_wait_in_its_backlog_in_order() -> None:
    async def scenario() -> None:
        bus = BatchBus()
        native, replies, hub = session(bus)
        native.on_text(place(1), last=False)
        native.on_text(place(2))
        hub.paused(native.client)
        bus.settle()
        await turn()
        assert replies() == []
        assert len(native.client.backlog) == 2
        hub.resumed(native.client)
        assert [r["id"] for r in replies()] == [1, 2]

    asyncio.run(scenario())


def test_a_cancel_all_with_nothing_to_cancel_is_answered() -> None:
    async def scenario() -> None:
        bus = BatchBus()
        native, replies, _ = session(bus)
        native.on_text(json.dumps({"op": "cancel_all", "id": 9, "symbol": SYMBOL}).encode())
        bus.settle()  # no events: nothing was open
        await turn()
        assert replies() == [{"id": 9, "result": {"symbol": SYMBOL, "canceled": []}}]

    asyncio.run(scenario())


def test_a_reply_that_fails_to_render_costs_only_itself() -> None:
    async def scenario() -> None:
        bus = BatchBus()
        native, replies, _ = session(bus)
        native.on_text(place(1), last=False)
        native.on_text(place(2))
        (commands, future), = bus.lists
        broken = Applied(1, 1, commands[0], [])  # a place without its events cannot render
        future.set_result([broken, bus.applied(commands[1])])
        await turn()
        assert [r["id"] for r in replies()] == [2]

    asyncio.run(scenario())
