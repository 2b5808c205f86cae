"""Rounds written by the io_uring kernel worker (`KernelSends`) on real sockets: whatever the
kernel takes in part, every frame arrives whole and in order, control frames land between
data frames, a paused socket goes back to the loop and the slow-client policy, and a close
asked for during a round follows that round's frames and ends the stream."""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import threading
from typing import Any

import pytest
import uvloop

from crossbook.gateway.ws.fanout import Client, Hub, Limits, Mode
from crossbook.gateway.ws.server import pong_frame, text_frame
from crossbook.gateway.ws.sockets import KernelSends, SocketSender


class _WS:
    """What `SocketSender` uses of a picows transport, over a plain asyncio transport."""

    def __init__(self, underlying: asyncio.Transport) -> None:
        self.underlying_transport = underlying
        self.is_close_frame_sent = False

    def send_close(self, code: int, reason: bytes) -> None:
        if not self.is_close_frame_sent:
            self.is_close_frame_sent = True
            self.underlying_transport.write(
                struct.pack("!BBH", 0x88, 2 + len(reason), int(code)) + reason)

    def disconnect(self, graceful: bool = True) -> None:
        self.underlying_transport.close()


class _Counting(SocketSender):
    """Counts the rounds whose send the kernel took only in part."""

    partial = 0

    def landed(self, result: bytes | OSError | None) -> None:
        if result is not None:
            type(self).partial += 1
        super().landed(result)


class _Server(asyncio.Protocol):
    pauses = 0

    def __init__(self, hub: Hub, accepted: asyncio.Future[tuple[Client, SocketSender]]) -> None:
        self.hub = hub
        self.accepted = accepted
        self.client: Client | None = None
        self.sender: SocketSender | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport) or hasattr(transport, "writelines")
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        transport.set_write_buffer_limits(high=16384)  # type: ignore[attr-defined]
        sender = _Counting(_WS(transport), 0.5)  # type: ignore[arg-type]
        sender.offload()
        client = self.hub.connect(sender, "peer", "raw")
        assert client is not None
        self.client, self.sender = client, sender
        self.accepted.set_result((client, sender))

    def pause_writing(self) -> None:
        type(self).pauses += 1
        if self.client is not None:
            self.hub.paused(self.client)

    def resume_writing(self) -> None:
        if self.client is not None and not self.client.closed:
            self.hub.resumed(self.client)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.client is not None and self.sender is not None:
            self.hub.disconnect(self.client)
            self.sender.release()


def _slow_reader(port: int, out: list[bytes], done: threading.Event, seed: int) -> None:
    """Reads in small pieces with pauses until the server closes."""
    rng = random.Random(seed)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    try:
        while True:
            data = sock.recv(rng.choice((64, 500, 4096)))
            if not data:
                return
            out.append(data)
            if rng.random() < 0.05:
                done.wait(0.002)
    finally:
        sock.close()
        done.set()


def _frames(stream: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of each unmasked server frame; fails on anything malformed."""
    frames, at = [], 0
    while at < len(stream):
        first, second = stream[at], stream[at + 1]
        assert first & 0x80, f"not a final frame at {at}"
        assert not second & 0x80, f"a masked server frame at {at}"
        size, at = second & 0x7F, at + 2
        if size == 126:
            size, at = struct.unpack_from("!H", stream, at)[0], at + 2
        elif size == 127:
            size, at = struct.unpack_from("!Q", stream, at)[0], at + 8
        assert at + size <= len(stream), "truncated frame"
        frames.append((first & 0x0F, stream[at:at + size]))
        at += size
    return frames


async def _serve(limits: Limits, seed: int) -> tuple[
        Hub, KernelSends, Client, SocketSender, list[bytes], threading.Event, Any]:
    loop = asyncio.get_running_loop()
    sends = KernelSends.open(loop)
    if sends is None:
        pytest.skip("io_uring is not available here")
    hub = Hub(limits, frame=text_frame, schedule=loop.call_soon, later=loop.call_later,
              offload=sends)
    accepted: asyncio.Future[tuple[Client, SocketSender]] = loop.create_future()
    server = await loop.create_server(lambda: _Server(hub, accepted), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    received: list[bytes] = []
    done = threading.Event()
    reader = threading.Thread(target=_slow_reader, args=(port, received, done, seed))
    reader.start()
    client, sender = await accepted
    return hub, sends, client, sender, received, done, (server, reader)


def test_frames_arrive_whole_and_in_order_through_partial_sends_and_pauses() -> None:
    _Counting.partial = _Server.pauses = 0

    async def main() -> list[bytes]:
        hub, sends, client, sender, received, done, (server, reader) = await _serve(
            Limits(max_queue=1_000_000, max_stall_s=60.0), seed=3)
        topic = hub.topic("t", Mode.APPEND)
        hub.subscribe(client, topic)
        rng = random.Random(5)
        sent = 0
        while sent < 3000:
            for _ in range(min(rng.randint(1, 40), 3000 - sent)):
                hub.publish(topic, b"%06d:" % sent + b"x" * rng.choice((10, 200, 1500, 9000)))
                sent += 1
            hub.distribute()
            if rng.random() < 0.2:
                sender.control(b"\x89\x00")  # a heartbeat ping
                sender.control(pong_frame(b"%d" % sent))
            await asyncio.sleep(0)
        for _ in range(6000):  # until everything is written (the reader keeps reading)
            if not (client.out or client.backlog or sender.handed_over or sender.buffered()):
                break
            await asyncio.sleep(0.01)
        hub.drop(client, "done")
        await asyncio.to_thread(done.wait, 30)
        server.close()
        reader.join(10)
        sends.close()
        return received

    stream = b"".join(uvloop.run(main()))
    frames = _frames(stream)
    texts = [payload for opcode, payload in frames if opcode == 0x1]
    assert [int(t[:6]) for t in texts] == list(range(3000))  # none lost, none reordered
    assert {opcode for opcode, _ in frames} == {0x1, 0x9, 0xA, 0x8}
    assert frames[-1][0] == 0x8  # the close is the last frame
    assert _Counting.partial > 0  # the kernel did take sends in part
    assert _Server.pauses > 0  # and the rest made the socket's buffer pass its high-water mark


def test_a_close_during_a_round_follows_the_rounds_frames() -> None:
    async def main() -> tuple[list[bytes], bool]:
        hub, sends, client, sender, received, done, (server, reader) = await _serve(
            Limits(), seed=4)
        topic = hub.topic("t", Mode.APPEND)
        hub.subscribe(client, topic)
        for i in range(20):
            hub.publish(topic, b"%06d:" % i + b"y" * 700)
        hub.flush()  # the round is handed over: it lands in a later loop turn
        held = sender.handed_over
        hub.drop(client, "slow consumer: test")
        hub.publish(topic, b"999999:after")  # the client is gone: never sent
        hub.flush()
        await asyncio.to_thread(done.wait, 30)
        server.close()
        reader.join(10)
        sends.close()
        return received, held

    received, held = uvloop.run(main())
    assert held
    frames = _frames(b"".join(received))
    assert [int(p[:6]) for op, p in frames if op == 0x1] == list(range(20))
    assert frames[-1][0] == 0x8
    assert frames[-1][1][2:] == b"slow consumer: test"


class _Underlying:
    """Just enough of a transport for `SocketSender` outside an event loop."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.written: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str) -> Any:
        return self.sock if name == "socket" else None

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.closed

    def writelines(self, frames: list[bytes]) -> None:
        self.written.extend(frames)

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True


def test_what_the_loop_writes_during_a_round_waits_for_it_and_a_failed_write_lets_go() -> None:
    ours, peer = socket.socketpair()
    try:
        underlying = _Underlying(ours)
        sender = SocketSender(_WS(underlying), 0.5)  # type: ignore[arg-type]
        sender.offload()
        assert sender.claim()
        assert not sender.claim()  # one round at a time
        sender.control(b"\x89\x00")
        sender.close(1008, "slow", linger=0.0)
        assert underlying.written == []  # nothing while the round holds the socket
        sender.landed(b"rest")  # the kernel took part of the round's write
        assert underlying.written[:2] == [b"rest", b"\x89\x00"]
        assert underlying.written[2][:1] == b"\x88"  # then the close
        assert underlying.closed
        sender.release()
        assert sender.sock is None

        underlying = _Underlying(ours)
        sender = SocketSender(_WS(underlying), 0.5)  # type: ignore[arg-type]
        sender.offload()
        assert sender.claim()
        sender.release()  # the connection is lost during the round: the duplicate stays
        assert sender.sock is not None
        sender.landed(OSError(32, "Broken pipe"))
        assert underlying.closed
        assert sender.sock is None  # closed (an unclosed socket would fail the test)
        assert sender.fd == -1
    finally:
        ours.close()
        peer.close()
