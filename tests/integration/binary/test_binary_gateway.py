"""The binary gateway of a real node (`crossbook serve`, Unix socket): every message type in
one session, resend after a reconnect, and malformed or random bytes that cost the peer its
session (a coded `Logout`) but never the node."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crossbook.client.binary import BinaryClient
from crossbook.domain.enums import CloseReason, Liquidity, OrderStatus, OrderType, Side
from crossbook.domain.enums import TimeInForce as Tif
from crossbook.domain.rejects import Reject
from crossbook.protocol.binary import FrameDecoder, ProtocolErrorCode, encode, sign_login
from crossbook.protocol.binary_messages import (
    REVISION,
    SERVER_MESSAGES,
    AcceptedReport,
    AmendedReport,
    CancelAllReport,
    CanceledReport,
    ExpiredReport,
    FillReport,
    Login,
    LoginAccepted,
    LoginRejected,
    Logout,
    Message,
    NewOrder,
    RejectedReport,
    Report,
)
from tests.support.journal_reads import journaled_orders
from tests.support.node import NodeProcess

CONFIG = """
[[assets]]
code = "BTC"
precision = 8
[[assets]]
code = "USDT"
precision = 8
[[instruments]]
symbol = "BTC-USDT"
base = "BTC"
quote = "USDT"
tick_size = "0.01"
lot_size = "0.00001"
[limits]
key_weight_per_minute = 0
key_orders_per_10s = 0
key_orders_per_day = 0
ip_weight_per_minute = 0
"""
FUNDS = {"USDT": "10000000", "BTC": "1000"}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    root = tmp_path_factory.mktemp("bin")
    process = NodeProcess(root / "d", CONFIG)
    process.start()
    yield process
    process.close()


def socket_path(node: NodeProcess) -> str:
    return str(node.data_dir / "binary.sock")


def client(node: NodeProcess, key: str, secret: str, **options: object) -> BinaryClient:
    return BinaryClient(key, secret.encode(), path=socket_path(node), **options)  # type: ignore[arg-type]


async def raw_session(node: NodeProcess, payload: bytes) -> list[Message]:
    """Send bytes on a fresh connection; every frame the server sent until it closed."""
    reader, writer = await asyncio.open_unix_connection(socket_path(node))
    writer.write(payload)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    messages, error = FrameDecoder(accept=SERVER_MESSAGES).feed(data)
    assert error is None
    return messages


def login_frame(key: str, secret: str, nonce: int, skew_ns: int = 0) -> bytes:
    ts = time.time_ns() + skew_ns
    return encode(Login(key, ts, nonce, 0, 1000, REVISION, sign_login(
        secret.encode(), key, ts, nonce, 0)))


def test_every_message_type_in_one_session(node: NodeProcess) -> None:
    maker_key, maker_secret = node.trader(11, FUNDS)
    taker_key, taker_secret = node.trader(12, FUNDS)

    async def scenario() -> None:
        maker_reports: list[Report] = []
        async with client(node, maker_key, maker_secret, on_report=maker_reports.append) as maker, \
                client(node, taker_key, taker_secret) as taker:
            assert maker.account == 11
            rest = await maker.new_order("BTC-USDT", Side.SELL, OrderType.LIMIT, qty=10_000,
                                         price=5_000_000, client_order_id="m-1")
            assert isinstance(rest, AcceptedReport)
            assert rest.client_order_id == "m-1"
            taken = await taker.new_order("BTC-USDT", Side.BUY, OrderType.LIMIT, qty=4_000,
                                          price=5_000_000, tif=Tif.IOC)
            assert isinstance(taken, AcceptedReport)
            amended = await maker.amend("BTC-USDT", rest.order_id, qty=8_000)
            assert isinstance(amended, AmendedReport)
            assert amended.kept_priority
            canceled = await maker.cancel("BTC-USDT", rest.order_id)
            assert isinstance(canceled, CanceledReport)
            assert canceled.reason is CloseReason.USER
            for price in (4_000_000, 4_100_000):
                await maker.new_order("BTC-USDT", Side.BUY, OrderType.LIMIT, qty=1_000,
                                      price=price)
            done = await maker.cancel_all("BTC-USDT")
            assert isinstance(done, CancelAllReport)
            assert done.canceled == 2
            refused = await maker.cancel("BTC-USDT", 999_999)
            assert isinstance(refused, RejectedReport)
            assert refused.code == Reject.UNKNOWN_ORDER
            foreign = await maker.submit(NewOrder(
                maker.next_request_id(), "BTC-USDT", Side.BUY, OrderType.LIMIT, 1, 1,
                account=12))
            assert isinstance(foreign, RejectedReport)
            assert foreign.code == Reject.GATEWAY_FORBIDDEN
            unfilled = await taker.new_order("BTC-USDT", Side.BUY, OrderType.LIMIT, qty=1,
                                             price=100, tif=Tif.IOC)
            assert isinstance(unfilled, AcceptedReport)
            await asyncio.sleep(0.2)
        fills = [r for r in maker_reports if isinstance(r, FillReport)]
        assert len(fills) == 1
        assert fills[0].liquidity is Liquidity.MAKER
        assert fills[0].request_id == 0  # caused by the taker's request, not the maker's
        assert fills[0].status is OrderStatus.PARTIALLY_FILLED
        seqs = [r.seq for r in maker_reports]
        assert seqs == list(range(1, len(seqs) + 1))

    asyncio.run(scenario())


def test_resend_after_reconnect(node: NodeProcess) -> None:
    key, secret = node.trader(21, FUNDS)
    other_key, other_secret = node.trader(22, FUNDS)

    async def scenario() -> None:
        first = client(node, key, secret, reconnect=False)
        accepted = await first.connect()
        order = await first.new_order("BTC-USDT", Side.SELL, OrderType.LIMIT, qty=3_000,
                                      price=6_000_000)
        session_id, seen = first.session_id, first.last_seq
        await first.close()
        async with client(node, other_key, other_secret) as other:
            for _ in range(3):
                await other.new_order("BTC-USDT", Side.BUY, OrderType.LIMIT, qty=1_000,
                                      price=6_000_000)
        resumed: list[Report] = []
        second = client(node, key, secret, session_id=session_id, last_seq=seen,
                        on_report=resumed.append)
        again = await second.connect()
        assert again.session_id == accepted.session_id
        assert again.next_seq == seen + 4
        assert isinstance(order, AcceptedReport)
        for _ in range(100):
            if len(resumed) == 3:
                break
            await asyncio.sleep(0.02)
        await second.close()
        assert [r.seq for r in resumed] == [seen + 1, seen + 2, seen + 3]
        assert all(isinstance(r, FillReport) and r.order_id == order.order_id for r in resumed)
        last = resumed[-1]
        assert isinstance(last, FillReport)
        assert last.status is OrderStatus.FILLED

    asyncio.run(scenario())


@pytest.mark.parametrize(("payload", "code"), [
    (b"\x02\x00\x10\x01", ProtocolErrorCode.BAD_LENGTH),
    (b"\xff\xff\x10\x01", ProtocolErrorCode.OVERSIZED),
    (b"\x10\x00\x7e\x01" + bytes(12), ProtocolErrorCode.UNKNOWN_TYPE),
    (b"\x10\x00\x41\x01" + bytes(12), ProtocolErrorCode.UNKNOWN_TYPE),
    (b"\x10\x00\x10\x09" + bytes(12), ProtocolErrorCode.UNSUPPORTED_VERSION),
    (b"\x10\x00\x10\x01" + bytes(12), ProtocolErrorCode.TRUNCATED),
    (encode(NewOrder(1, "BTC-USDT", Side.BUY, OrderType.LIMIT, 1, 1)),
     ProtocolErrorCode.LOGIN_REQUIRED),
])
def test_malformed_bytes_get_a_coded_logout(
    node: NodeProcess, payload: bytes, code: ProtocolErrorCode
) -> None:
    messages = asyncio.run(raw_session(node, payload))
    assert isinstance(messages[-1], Logout)
    assert messages[-1].code == code


def test_bad_field_after_login_and_login_refusals(node: NodeProcess) -> None:
    key, secret = node.trader(31, FUNDS)
    order = bytearray(encode(NewOrder(1, "BTC-USDT", Side.BUY, OrderType.LIMIT, 1, 1)))
    order[28] = 9  # side
    messages = asyncio.run(raw_session(node, login_frame(key, secret, 1) + bytes(order)))
    assert isinstance(messages[0], LoginAccepted)
    assert isinstance(messages[-1], Logout)
    assert messages[-1].code == ProtocolErrorCode.BAD_FIELD
    replay = asyncio.run(raw_session(node, login_frame(key, secret, 1)))
    assert isinstance(replay[0], LoginRejected)
    assert "nonce" in replay[0].message
    stale = asyncio.run(raw_session(node, login_frame(key, secret, 2, -60_000_000_000)))
    assert isinstance(stale[0], LoginRejected)
    wrong = asyncio.run(raw_session(node, login_frame(key, "not-the-secret", 3)))
    assert isinstance(wrong[0], LoginRejected)
    assert wrong[0].code == Reject.GATEWAY_UNAUTHORIZED


def test_a_revoked_key_ends_its_open_session(node: NodeProcess) -> None:
    key, secret = node.trader(33, FUNDS)

    async def scenario() -> list[Message]:
        reader, writer = await asyncio.open_unix_connection(socket_path(node))
        writer.write(login_frame(key, secret, 1))
        decoder = FrameDecoder(accept=SERVER_MESSAGES)
        accepted, _ = decoder.feed(await asyncio.wait_for(reader.read(4096), 10))
        assert isinstance(accepted[0], LoginAccepted)
        await asyncio.to_thread(node.admin, "DELETE", f"/v1/admin/api-keys/{key}")
        writer.write(encode(NewOrder(7, "BTC-USDT", Side.BUY, OrderType.LIMIT, 1_000, 1)))
        rest = await asyncio.wait_for(reader.read(), 10)  # until the server closes
        writer.close()
        messages, error = decoder.feed(rest)
        assert error is None
        return messages

    messages = asyncio.run(scenario())
    assert [type(m) for m in messages] == [Logout]
    assert messages[0].code == Reject.GATEWAY_UNAUTHORIZED
    assert journaled_orders(node.data_dir, 33) == 0


def test_random_bytes_never_stop_the_node(node: NodeProcess) -> None:
    key, secret = node.trader(41, FUNDS)
    rng = random.Random(5)
    nonce = 100

    async def fuzz() -> None:
        nonlocal nonce
        for _ in range(40):
            nonce += 1
            junk = rng.randbytes(rng.randint(1, 600))
            prefix = login_frame(key, secret, nonce) if rng.random() < 0.5 else b""
            reader, writer = await asyncio.open_unix_connection(socket_path(node))
            writer.write(prefix + junk)
            writer.write_eof()
            data = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            frames, error = FrameDecoder(accept=SERVER_MESSAGES).feed(data)
            assert error is None
            if frames and isinstance(frames[-1], Logout):
                assert frames[-1].code in set(ProtocolErrorCode)
        async with client(node, key, secret) as healthy:
            answer = await healthy.new_order("BTC-USDT", Side.BUY, OrderType.LIMIT, qty=1_000,
                                             price=1_000_000)
            assert isinstance(answer, AcceptedReport | ExpiredReport)

    asyncio.run(fuzz())
    assert node.process is not None
    assert node.process.poll() is None
    assert node.http.get("/ready").status_code == 200


def test_unix_socket_is_private(node: NodeProcess) -> None:
    assert os.stat(Path(socket_path(node))).st_mode & 0o077 == 0
