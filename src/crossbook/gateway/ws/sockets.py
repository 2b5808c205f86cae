"""A WebSocket client's socket for the hub (`SocketSender`) and a way of making fan-out
rounds' writes off the event loop's thread, `KernelSends` (`Limits.send_writer = "kernel"`,
chosen by `offload`; the default is the loop): the loop hands a round to one io_uring kernel
worker in one system call and goes on with its work.

Why: with many clients a round is mostly the kernel's work (a loopback send costs 8-11 us of
CPU, the Python around it 1-3 us), and on the loop's thread it delays everything else the
loop does. Off that thread, the kernel's part of every write runs beside the loop's Python
work (the sequencer, the next batch), on another core when one is free. Server frames are
unmasked, so the bytes written off the loop are the ones the loop would have written. A
kernel worker needs no interpreter lock (a Python thread would take it back after every
system call, and on a busy machine each hand-over can wait for a scheduler slice), and the
scheduler may run other tasks between two of its sends, where it would not inside one long
system call. docs/adr/0002-websocket-server.md has the measurements, and why the loop stays
the default.

Who writes a socket. Every byte on a connection must keep its frame boundaries and its order
with what else is written to it, so a socket has one writer at a time:

- the loop (through the picows/uvloop transport), by default;
- the offload (the kernel worker), from `claim` (on the loop, only when the transport
  holds no buffered bytes and no close is under way) until the round *lands* (`landed`, on
  the loop, after every write of the round is made).

While the offload holds a socket, every loop-side write to it is held back in order
(`write`: resumed output, `control`: pings and pongs, `close`) and made when the socket is
handed back. The offload writes on its own duplicate of the descriptor (the transport may
close its own at any time; the duplicate is closed on the loop once the connection is gone
and the offload no longer holds it). A send the kernel takes only in
part (its buffer full) hands the rest back to the transport, ahead of anything held, so the
loop writes the remainder first and the transport's buffer, its high-water mark and
`pause_writing` apply as with any loop-side write: the slow-client policy sees the same
signals. A connection whose send fails is disconnected by the loop.

picows writes to the transport itself only for the handshake (before the hub knows the
client) and for closes it starts on its own (a protocol error of the peer, a heartbeat not
answered, an exception in a callback): such a connection is torn down, and a frame the
offload was writing to it at that moment may be cut. Its automatic pongs are off: the server
answers pings through `control`, and its heartbeat pings come through `control` too
(`WSListener.send_user_specific_ping`).

The cost of a round handed over (the kernel worker's CPU time) comes back
with its landing and counts toward the hub's hold-back like the loop's own writing.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
from collections.abc import Callable
from typing import cast

from picows import WSCloseCode, WSTransport

from crossbook.gateway.ws.fanout import Limits, Sender
from crossbook.gateway.ws.uring import Ring

_Result = bytes | OSError | None
"""What a write off the loop left: None (all sent), the unsent rest, or the error."""


class SocketSender:
    """The hub's `Sender` for one picows connection, with the hand-over to `KernelSends`."""

    __slots__ = ("closing", "fd", "gone", "grace", "handed_over", "held", "sock",
                 "transport", "underlying")

    def __init__(self, transport: WSTransport, grace: float) -> None:
        self.transport = transport
        self.grace = grace
        self.underlying = transport.underlying_transport
        self.sock: socket.socket | None = None
        """The offload's own duplicate of the connection's descriptor (None: loop only)."""
        self.fd = -1
        """`sock`'s descriptor."""
        self.handed_over = False
        self.held: list[bytes] = []
        """Loop-side writes made while the offload holds the socket, in order."""
        self.closing: tuple[int, str, float] | None = None
        """A close asked for while the offload holds the socket: code, reason, linger."""
        self.gone = False
        """The connection is lost: close the duplicate once the offload lets it go."""

    def offload(self) -> None:
        """Let `KernelSends` write this socket (call once, after the handshake)."""
        raw = self.underlying.get_extra_info("socket")
        if raw is not None and self.sock is None:
            sock = socket.socket(fileno=os.dup(raw.fileno()))
            sock.setblocking(False)
            self.sock = sock
            self.fd = sock.fileno()

    # -- the hub's Sender ------------------------------------------------------------------

    def write(self, frames: list[bytes]) -> None:
        """Frames built by `text_frame`, in order, at once (one writev) or after the round
        when the offload holds the socket."""
        if self.handed_over:
            self.held.extend(frames)
            return
        underlying = self.underlying
        if not self.transport.is_close_frame_sent and not underlying.is_closing():
            underlying.writelines(frames)

    def control(self, frame: bytes) -> None:
        """A control frame (ping, pong): between two data frames, never inside one."""
        self.write([frame])

    def close(self, code: int, reason: str, linger: float | None = None) -> None:
        """Send a close frame after everything written so far; disconnect `linger` seconds
        later (the grace period by default) if the peer has not closed first."""
        if self.handed_over:
            if self.closing is None:
                self.closing = (code, reason, self.grace if linger is None else linger)
            return
        transport = self.transport
        transport.send_close(WSCloseCode(code), reason.encode())
        delay = self.grace if linger is None else linger
        if delay <= 0:
            transport.disconnect()
        else:
            asyncio.get_running_loop().call_later(delay, transport.disconnect, False)

    def buffered(self) -> int:
        return int(self.underlying.get_write_buffer_size())

    # -- hand-over --------------------------------------------------------------------------

    def claim(self) -> bool:
        if (self.sock is None or self.handed_over or self.gone or self.closing is not None
                or self.transport.is_close_frame_sent or self.underlying.is_closing()
                or self.underlying.get_write_buffer_size()):
            return False
        self.handed_over = True
        return True

    def landed(self, result: _Result) -> None:
        """On the loop, once the round's writes are made: the socket is the loop's again."""
        self.handed_over = False
        held, self.held = self.held, []
        if isinstance(result, OSError):  # the connection is broken: nothing more to write
            self.closing = None
            self.transport.disconnect(False)
        else:
            if result:
                held.insert(0, result)
            if held:
                self.write(held)
            closing, self.closing = self.closing, None
            if closing is not None:
                self.close(*closing)
        if self.gone:
            self.release()

    def release(self) -> None:
        """The connection is lost: close the duplicate now, or when the offload lets it go."""
        self.gone = True
        if not self.handed_over and self.sock is not None:
            self.sock.close()
            self.sock, self.fd = None, -1


class KernelSends:
    """The hub's `Offload` without a thread: the loop queues a round's sends on an io_uring in
    one system call and returns; one kernel worker makes them, one after the other (the
    scheduler free to run anything else between two), and an eventfd on the loop collects
    the completions. The round's frames stay referenced until the last one completes."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ring: Ring) -> None:
        self.ring = ring
        self._loop = loop
        self._event = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        ring.register_eventfd(self._event)
        loop.add_reader(self._event, self._completed)
        self._writes: list[tuple[SocketSender, list[bytes]]] = []
        self._items: list[tuple[int, bytes]] = []
        self._results: list[int] = []
        self._pending = 0
        self._landed: Callable[[float], None] | None = None
        self._kernel = 0.0

    @classmethod
    def open(cls, loop: asyncio.AbstractEventLoop) -> KernelSends | None:
        ring = Ring.open(4096)
        if ring is None:
            return None
        if not ring.use_kernel_worker():
            ring.close()
            return None
        return cls(loop, ring)

    def claim(self, sender: Sender) -> bool:
        return isinstance(sender, SocketSender) and sender.claim()

    def submit(self, writes: list[tuple[Sender, list[bytes]]],
               landed: Callable[[float], None]) -> None:
        join = b"".join
        self._writes = mine = cast(list[tuple[SocketSender, list[bytes]]], writes)
        self._items = [(sender.fd, frames[0] if len(frames) == 1 else join(frames))
                       for sender, frames in mine]
        self._results = [-errno.EAGAIN] * len(mine)  # what was not started goes to the loop
        self._landed = landed
        self._kernel = self.ring.kernel_cpu()
        self._pending = self.ring.submit(self._items)
        if not self._pending:
            self._completed()

    def _completed(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self._event)
        if self._pending:
            self._pending -= self.ring.reap(self._results)
        landed = self._landed
        if self._pending or landed is None:
            return
        writes, items, results = self._writes, self._items, self._results
        self._writes, self._items, self._results, self._landed = [], [], [], None
        cost = max(0.0, self.ring.kernel_cpu() - self._kernel)  # a worker may have been replaced
        _land(writes, _outcomes(items, results), cost, landed)

    def close(self) -> None:
        self._loop.remove_reader(self._event)
        if not self._pending:
            self.ring.close()
        os.close(self._event)


def offload(limits: Limits, loop: asyncio.AbstractEventLoop) -> KernelSends | None:
    """The writer `limits.send_writer` names, where this system has what it needs (None: the
    loop writes)."""
    if limits.send_writer == "kernel":
        return KernelSends.open(loop)
    return None


def _outcomes(items: list[tuple[int, bytes]], taken: list[int]) -> list[_Result]:
    results: list[_Result] = []
    for (_, data), sent in zip(items, taken, strict=True):
        if sent == len(data):
            results.append(None)
        elif sent >= 0:
            results.append(data[sent:])
        elif sent == -errno.EAGAIN:
            results.append(data)
        else:
            results.append(OSError(-sent, os.strerror(-sent)))
    return results


def _land(writes: list[tuple[SocketSender, list[bytes]]], results: list[_Result], cost: float,
          landed: Callable[[float], None]) -> None:
    for (sender, _), result in zip(writes, results, strict=True):
        if result is None and not sender.held and sender.closing is None and not sender.gone:
            sender.handed_over = False  # the common case of `landed`, inline
        else:
            sender.landed(result)
    landed(cost)
