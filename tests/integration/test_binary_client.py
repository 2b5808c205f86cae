"""The asyncio binary client against a small fake server built from the same codec, over real
TCP and Unix sockets: login, pipelining, every request, reports in order, heartbeats,
reconnect with resend."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from crossbook.client.binary import BinaryClient, ConnectionLost, LoginRejectedError
from crossbook.domain.enums import CloseReason, Liquidity, OrderStatus, OrderType, Side
from crossbook.domain.rejects import Reject
from crossbook.protocol.binary import FrameDecoder, encode, encode_many, verify_login
from crossbook.protocol.binary_messages import (
    CLIENT_MESSAGES,
    REVISION,
    AcceptedReport,
    Amend,
    AmendedReport,
    Cancel,
    CancelAll,
    CancelAllReport,
    CanceledReport,
    FillReport,
    Heartbeat,
    Login,
    LoginAccepted,
    LoginRejected,
    Logout,
    Message,
    NewOrder,
    RejectedReport,
    Report,
    ResendDone,
    ResendRequest,
)

SECRET = b"s3cret"
ACCOUNT = 7


class Session:
    def __init__(self, session_id: int) -> None:
        self.session_id = session_id
        self.history: list[Report] = []
        self.connection: FakeConnection | None = None


class FakeServer:
    """Answers requests at once, keeps every session's reports for resend."""

    def __init__(self, heartbeat_ms: int = 1000) -> None:
        self.heartbeat_ms = heartbeat_ms
        self.sessions: dict[int, Session] = {}
        self.orders: dict[int, NewOrder] = {}
        self.connections: list[FakeConnection] = []
        self.logins = 0
        self.accepted = 0
        self.mute = False
        self.answer = True
        self.server: asyncio.Server | None = None

    async def start_tcp(self) -> int:
        self.server = await asyncio.get_running_loop().create_server(
            lambda: FakeConnection(self), "127.0.0.1", 0
        )
        return int(self.server.sockets[0].getsockname()[1])

    async def start_unix(self, path: str) -> None:
        self.server = await asyncio.get_running_loop().create_unix_server(
            lambda: FakeConnection(self), path
        )

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        self.drop_all()
        await self.server.wait_closed()

    def drop_all(self) -> None:
        for connection in self.connections:
            connection.transport.abort()

    def report(self, session: Session, build: Callable[[int], Report]) -> None:
        report = build(len(session.history) + 1)
        session.history.append(report)
        if session.connection is not None and not self.mute:
            session.connection.transport.write(encode(report))


class FakeConnection(asyncio.Protocol):
    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.decoder = FrameDecoder(accept=CLIENT_MESSAGES)
        self.session: Session | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connections.append(self)
        self.server.accepted += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.remove(self)
        if self.session is not None and self.session.connection is self:
            self.session.connection = None

    def data_received(self, data: bytes) -> None:
        messages, error = self.decoder.feed(data)
        for message in messages:
            self.handle(message)
        if error is not None:
            self.transport.write(encode(Logout(error.code, error.message)))
            self.transport.close()

    def handle(self, message: Message) -> None:
        server = self.server
        if server.mute:
            return
        if isinstance(message, Login):
            self.login(message)
            return
        session = self.session
        assert session is not None, "first frame must be Login"
        if isinstance(message, Heartbeat):
            self.transport.write(encode(Heartbeat(len(session.history))))
        elif isinstance(message, ResendRequest):
            last = len(session.history) if message.to_seq == 0 else message.to_seq
            resent = session.history[message.from_seq - 1 : last]
            done = ResendDone(message.from_seq, last, complete=True)
            self.transport.write(encode_many([*resent, done]))
        elif isinstance(message, Logout):
            self.transport.close()
        elif server.answer:
            self.request(session, message)

    def login(self, login: Login) -> None:
        server = self.server
        server.logins += 1
        if not verify_login(SECRET, login):
            self.transport.write(encode(LoginRejected(Reject.GATEWAY_UNAUTHORIZED, "bad key")))
            self.transport.close()
            return
        session = server.sessions.get(login.session_id)
        if session is None:
            session = Session(1000 + len(server.sessions))
            server.sessions[session.session_id] = session
        self.session, session.connection = session, self
        accepted = LoginAccepted(
            session.session_id, ACCOUNT, len(session.history) + 1, server.heartbeat_ms, REVISION
        )
        self.transport.write(encode(accepted))

    def request(self, session: Session, message: Message) -> None:
        server = self.server
        if isinstance(message, NewOrder):
            self.new_order(session, message)
        elif isinstance(message, Cancel):
            order = server.orders.pop(message.order_id, None)
            if order is None:
                server.report(
                    session,
                    lambda seq: RejectedReport(
                        seq,
                        message.request_id,
                        1,
                        ACCOUNT,
                        message.order_id,
                        Reject.UNKNOWN_ORDER,
                        message.symbol,
                        "",
                        "no such order",
                    ),
                )
            else:
                server.report(session, canceled(message.request_id, message.order_id, order))
        elif isinstance(message, Amend):
            server.report(
                session,
                lambda seq: AmendedReport(
                    seq,
                    message.request_id,
                    1,
                    ACCOUNT,
                    message.order_id,
                    message.symbol,
                    message.qty,
                    message.price,
                    0,
                    False,
                    "",
                ),
            )
        elif isinstance(message, CancelAll):
            mine = [(oid, o) for oid, o in server.orders.items() if o.symbol == message.symbol]
            for order_id, order in mine:
                del server.orders[order_id]
                server.report(session, canceled(message.request_id, order_id, order))
            server.report(
                session,
                lambda seq: CancelAllReport(
                    seq, message.request_id, 1, ACCOUNT, message.symbol, len(mine)
                ),
            )

    def new_order(self, session: Session, order: NewOrder) -> None:
        server = self.server
        order_id = 1 + len(server.orders) + sum(len(s.history) for s in server.sessions.values())
        server.report(
            session,
            lambda seq: AcceptedReport(
                seq,
                order.request_id,
                1,
                ACCOUNT,
                order_id,
                order.symbol,
                order.side,
                order.type,
                order.qty,
                order.price,
                order.tif,
                order.quote_qty,
                order.stop_price,
                order.expire_ts,
                order.post_only,
                order.visible_qty,
                order.stp,
                True,
                order.client_order_id,
            ),
        )
        if order.type is OrderType.MARKET:
            server.report(session, fill(order.request_id, order_id, order))
        else:
            server.orders[order_id] = order


def canceled(request_id: int, order_id: int, order: NewOrder) -> Callable[[int], Report]:
    return lambda seq: CanceledReport(
        seq,
        request_id,
        1,
        ACCOUNT,
        order_id,
        order.symbol,
        CloseReason.USER,
        OrderStatus.CANCELED,
        0,
        order.client_order_id,
    )


def fill(request_id: int, order_id: int, order: NewOrder) -> Callable[[int], Report]:
    return lambda seq: FillReport(
        seq,
        request_id,
        1,
        ACCOUNT,
        order_id,
        seq,
        order.symbol,
        order.side,
        Liquidity.TAKER,
        OrderStatus.FILLED,
        100,
        order.qty,
        100 * order.qty,
        1,
        order.qty,
        order.client_order_id,
    )


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(test(), 20)

    asyncio.run(bounded())


async def with_tcp(body: Callable[[FakeServer, int], Awaitable[None]], **kw: Any) -> None:
    server = FakeServer(**kw)
    port = await server.start_tcp()
    try:
        await body(server, port)
    finally:
        await server.stop()


def test_pipelined_orders_over_tcp() -> None:
    async def body(server: FakeServer, port: int) -> None:
        async with BinaryClient("key", SECRET, host="127.0.0.1", port=port) as client:
            assert client.account == ACCOUNT
            assert client.session_id == 1000
            futures = [
                client.new_order("BTCUSDT", Side.BUY, OrderType.LIMIT, qty=i + 1, price=100)
                for i in range(500)
            ]
            answers = await asyncio.gather(*futures)
            accepted = [a for a in answers if isinstance(a, AcceptedReport)]
            assert [a.qty for a in accepted] == list(range(1, 501))
            assert len({a.order_id for a in accepted}) == 500
            seqs = []
            async for report in client.reports():
                seqs.append(report.seq)
                if len(seqs) == 500:
                    break
            assert seqs == list(range(1, 501))
            assert client.last_seq == 500

    run(lambda: with_tcp(body))


def test_send_calls_back_with_the_answer_or_the_drop() -> None:
    async def body(server: FakeServer, port: int) -> None:
        client = BinaryClient("key", SECRET, host="127.0.0.1", port=port, reconnect=False)
        await client.connect()
        answers: list[Report | ConnectionLost] = []
        for i in range(100):
            order = NewOrder(client.next_request_id(), "BTCUSDT", Side.BUY, OrderType.LIMIT,
                             qty=i + 1, price=100)
            client.send(order, answers.append)
        await eventually(lambda: len(answers) == 100)
        assert [a.qty for a in answers if isinstance(a, AcceptedReport)] == list(range(1, 101))
        first = answers[0]
        assert isinstance(first, AcceptedReport)
        server.answer = False
        client.send(Cancel(client.next_request_id(), "BTCUSDT", first.order_id), answers.append)
        await client.drain()
        server.drop_all()
        await eventually(lambda: len(answers) == 101)
        assert isinstance(answers[-1], ConnectionLost)
        await client.close()

    run(lambda: with_tcp(body))


def test_every_request_over_a_unix_socket() -> None:
    async def body() -> None:
        server = FakeServer()
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "binary.sock")
            await server.start_unix(path)
            reports: list[Report] = []
            client = BinaryClient("key", SECRET, path=path, on_report=reports.append)
            await client.connect()
            order = await client.new_order(
                "ETHUSDT",
                Side.SELL,
                OrderType.LIMIT,
                qty=3,
                price=250,
                client_order_id="my-1",
                post_only=True,
            )
            assert isinstance(order, AcceptedReport)
            assert (order.client_order_id, order.post_only) == ("my-1", True)
            amended = await client.amend("ETHUSDT", order.order_id, qty=2)
            assert isinstance(amended, AmendedReport)
            assert amended.qty == 2
            canceled = await client.cancel("ETHUSDT", order.order_id)
            assert isinstance(canceled, CanceledReport)
            unknown = await client.cancel("ETHUSDT", order.order_id)
            assert isinstance(unknown, RejectedReport)
            assert unknown.code is Reject.UNKNOWN_ORDER
            for _ in range(3):
                await client.new_order("ETHUSDT", Side.BUY, OrderType.LIMIT, qty=1, price=1)
            done = await client.cancel_all("ETHUSDT")
            assert isinstance(done, CancelAllReport)
            assert done.canceled == 3
            market = await client.new_order("ETHUSDT", Side.BUY, OrderType.MARKET, qty=5)
            assert isinstance(market, AcceptedReport)
            await eventually(lambda: isinstance(reports[-1], FillReport))
            assert [r.seq for r in reports] == list(range(1, len(reports) + 1))
            await client.close()
            await server.stop()

    run(body)


def test_wrong_secret_is_refused() -> None:
    async def body(server: FakeServer, port: int) -> None:
        client = BinaryClient("key", b"wrong", host="127.0.0.1", port=port)
        with pytest.raises(LoginRejectedError) as caught:
            await client.connect()
        assert caught.value.code == Reject.GATEWAY_UNAUTHORIZED
        await client.close()

    run(lambda: with_tcp(body))


def test_reconnect_resumes_the_session_and_resends_missed_reports() -> None:
    async def body(server: FakeServer, port: int) -> None:
        reports: list[Report] = []
        client = BinaryClient(
            "key",
            SECRET,
            host="127.0.0.1",
            port=port,
            on_report=reports.append,
            reconnect_delays=(0.01, 0.05),
        )
        await client.connect()
        first = await client.new_order("BTCUSDT", Side.BUY, OrderType.LIMIT, qty=1, price=9)
        assert isinstance(first, AcceptedReport)
        server.answer = False
        in_flight = client.new_order("BTCUSDT", Side.BUY, OrderType.LIMIT, qty=2, price=9)
        await client.drain()
        server.drop_all()
        with pytest.raises(ConnectionLost):
            await in_flight
        assert not client.caught_up
        session = server.sessions[client.session_id]
        order = NewOrder(99, "BTCUSDT", Side.SELL, OrderType.MARKET, qty=4)
        for _ in range(3):
            server.report(session, fill(0, first.order_id, order))
        server.answer = True
        await eventually(lambda: server.logins == 2 and len(reports) == 4)
        await eventually(lambda: client.caught_up)
        assert client.session_id == session.session_id
        assert [r.seq for r in reports] == [1, 2, 3, 4]
        assert all(isinstance(r, FillReport) for r in reports[1:])
        again = await client.new_order("BTCUSDT", Side.BUY, OrderType.LIMIT, qty=3, price=9)
        assert isinstance(again, AcceptedReport)
        assert again.seq == 5
        await client.close()

    run(lambda: with_tcp(body))


def test_gap_announced_by_a_heartbeat_is_filled() -> None:
    async def body(server: FakeServer, port: int) -> None:
        reports: list[Report] = []
        client = BinaryClient("key", SECRET, host="127.0.0.1", port=port, on_report=reports.append)
        await client.connect()
        session = server.sessions[client.session_id]
        order = NewOrder(1, "BTCUSDT", Side.SELL, OrderType.MARKET, qty=4)
        server.mute = True
        server.report(session, fill(0, 1, order))
        server.report(session, fill(0, 1, order))
        server.mute = False
        assert session.connection is not None
        session.connection.transport.write(encode(Heartbeat(2)))
        await eventually(lambda: len(reports) == 2)
        assert [r.seq for r in reports] == [1, 2]
        await client.close()

    run(lambda: with_tcp(body))


def test_silent_server_is_dropped_and_reconnected() -> None:
    async def body(server: FakeServer, port: int) -> None:
        client = BinaryClient(
            "key",
            SECRET,
            host="127.0.0.1",
            port=port,
            heartbeat_ms=40,
            reconnect_delays=(0.01, 0.02),
            login_timeout=0.1,
        )
        await client.connect()
        assert client.heartbeat_ms == 40
        server.mute = True
        await eventually(lambda: server.accepted >= 3)
        server.mute = False
        await eventually(lambda: server.logins >= 2)
        answer = await client.new_order("X", Side.BUY, OrderType.LIMIT, qty=1, price=1)
        assert isinstance(answer, AcceptedReport)
        await client.close()

    run(lambda: with_tcp(body, heartbeat_ms=40))


def test_garbage_from_the_server_closes_and_reconnects() -> None:
    async def body(server: FakeServer, port: int) -> None:
        client = BinaryClient(
            "key", SECRET, host="127.0.0.1", port=port, reconnect_delays=(0.01, 0.02)
        )
        await client.connect()
        server.connections[0].transport.write(b"\x05\x00\x7f\x01\x00")
        await eventually(lambda: server.logins == 2)
        answer = await client.new_order("X", Side.BUY, OrderType.LIMIT, qty=1, price=1)
        assert isinstance(answer, AcceptedReport)
        await client.close()

    run(lambda: with_tcp(body))


def test_client_needs_one_address() -> None:
    with pytest.raises(ValueError, match="either"):
        BinaryClient("key", SECRET, host="127.0.0.1")
    with pytest.raises(ValueError, match="either"):
        BinaryClient("key", SECRET, host="h", port=1, path="/p")
