"""A small HTTP/1.1 keep-alive load generator for the REST benchmarks (no dependencies).

Each connection is an asyncio protocol that sends one request, waits for the whole response
(headers plus `content-length` bytes) and sends the next: no pipelining. Two modes:

- closed loop (`rate=None`): every connection sends as fast as answers come back; this
  measures capacity (requests/s). Latency is per request from send to last byte.
- open loop (`rate=R`): requests are due at fixed intervals (1/R s) whatever the server
  does; a request whose connection is still busy waits, and its latency counts from the
  moment it was due, so coordinated omission is not hidden.

`make_request(i) -> bytes` builds request i (so each can be signed at send time).
`LoadResult.records` keeps, per request, the connection's local port, when it was due,
when it was written to the socket and when its answer was complete (perf_counter_ns), so a
run can be set beside the server's own timestamps: how late the generator itself was is
`sent - due`, not the server's.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

MakeRequest = Callable[[int], bytes]


@dataclass
class LoadResult:
    sent: int = 0
    latencies_ns: list[int] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    records: list[tuple[int, int, int, int]] = field(default_factory=list)
    """(local port, due, sent, done) per answered request."""

    def summary(self) -> dict[str, float | int | dict[str, int]]:
        lat = sorted(self.latencies_ns)

        def pct(p: float) -> float:
            if not lat:
                return 0.0
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] / 1e6, 3)

        return {
            "requests": len(lat),
            "per_second": round(len(lat) / self.elapsed_s, 1) if self.elapsed_s else 0.0,
            "p50_ms": pct(0.50),
            "p90_ms": pct(0.90),
            "p99_ms": pct(0.99),
            "p999_ms": pct(0.999),
            "max_ms": round(lat[-1] / 1e6, 3) if lat else 0.0,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
        }


class _Conn(asyncio.Protocol):
    def __init__(self, runner: _Runner) -> None:
        self.runner = runner
        self.buf = b""
        self.started = 0
        self.sent = 0
        self.port = 0
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.port = transport.get_extra_info("sockname")[1]
        self.ready.set_result(None)

    def send(self, request: bytes, due_ns: int) -> None:
        self.started = due_ns
        assert self.transport is not None
        self.transport.write(request)
        self.sent = time.perf_counter_ns()

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end].lower()
            at = head.find(b"content-length:")
            length = 0
            if at >= 0:
                line_end = head.find(b"\r\n", at)
                length = int(head[at + 15 : line_end if line_end > 0 else None])
            total = end + 4 + length
            if len(buf) < total:
                break
            status = int(buf[9:12])
            buf = buf[total:]
            self.runner.done(self, status)
        self.buf = buf

    def connection_lost(self, exc: Exception | None) -> None:
        self.runner.lost(exc)


class _Runner:
    def __init__(self, make_request: MakeRequest, total: int, rate: float | None) -> None:
        self.make_request = make_request
        self.total = total
        self.rate = rate
        self.result = LoadResult()
        self.idle: deque[_Conn] = deque()
        self.waiting: deque[int] = deque()
        self.finished = asyncio.get_running_loop().create_future()
        self.completed = 0

    def start_on(self, conn: _Conn, due_ns: int) -> None:
        i = self.result.sent
        self.result.sent += 1
        conn.send(self.make_request(i), due_ns)

    def done(self, conn: _Conn, status: int) -> None:
        now = time.perf_counter_ns()
        result = self.result
        result.latencies_ns.append(now - conn.started)
        result.records.append((conn.port, conn.started, conn.sent, now))
        result.statuses[status] = result.statuses.get(status, 0) + 1
        self.completed += 1
        if self.completed >= self.total:
            if not self.finished.done():
                self.finished.set_result(None)
            return
        if self.rate is None:
            if result.sent < self.total:
                self.start_on(conn, now)
        elif self.waiting:
            self.start_on(conn, self.waiting.popleft())
        else:
            self.idle.append(conn)

    def lost(self, exc: Exception | None) -> None:
        if not self.finished.done():
            self.finished.set_exception(ConnectionError(f"connection lost: {exc!r}"))


async def run_load(
    host: str, port: int, make_request: MakeRequest, *, connections: int, total: int,
    rate: float | None = None,
) -> LoadResult:
    loop = asyncio.get_running_loop()
    runner = _Runner(make_request, total, rate)
    conns = []
    for _ in range(connections):
        _, conn = await loop.create_connection(lambda: _Conn(runner), host, port)
        await conn.ready
        conns.append(conn)
    began = time.perf_counter_ns()
    if rate is None:
        for conn in conns:
            if runner.result.sent < total:
                runner.start_on(conn, time.perf_counter_ns())
    else:
        runner.idle.extend(conns)
        interval = 1e9 / rate
        for i in range(total):
            due = began + int(i * interval)
            delay = (due - time.perf_counter_ns()) / 1e9
            if delay > 0:
                await asyncio.sleep(delay)
            if runner.idle:
                runner.start_on(runner.idle.popleft(), due)
            else:
                runner.waiting.append(due)
    await runner.finished
    runner.result.elapsed_s = (time.perf_counter_ns() - began) / 1e9
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    return runner.result
