"""`HttpServer`: the node's HTTP/1.1 server, an asyncio protocol on httptools' parser.

Contract: every complete request becomes a `Request` handed to `handle` (`GatewayApp.handle`); its
`Response` is written back as one buffer (status line, headers, `content-length`, body).
- Keep-alive per HTTP/1.1 rules (HTTP/1.0 and `Connection: close` close after the answer);
  pipelined requests are answered one at a time, in order; a connection with 32 requests
  queued stops reading until they drain.
- Bodies with `Content-Length` or chunked transfer coding arrive decoded; `Expect:
  100-continue` is answered before the body is read; a body over `max_body` is 413.
- `HEAD` answers with the headers of the same `GET` and no body (the app routes it).
- An unparsable request is answered 400 and the connection closed. An upgrade request is
  answered as plain HTTP (this port speaks no WebSocket) and its connection closed.
- A connection idle for one to two `idle_timeout` periods is closed. A client that stops
  reading pauses the reading of its requests (the transport's flow control).
- `serve()` runs until SIGINT or SIGTERM (or `should_exit`), then stops listening, closes
  idle connections and waits up to `drain_timeout` for the requests in flight.
- Each request carries the time of the socket read that completed it (`received_ns`); once
  answered, an order (a request whose route set `submitted_ns`) adds the `request` stage to
  `metrics`, and a record (peer port, received, submitted, resumed, written, status) to
  `metrics.trace` when the node keeps one.

Why not ASGI on uvicorn (docs/adr/0001-http-server.md): per request uvicorn builds an ASGI
scope, a header list, `receive`/`send` coroutines and their message dicts, and checks them;
here the parser's callbacks fill the `Request` the app uses directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import deque
from collections.abc import Callable, Coroutine
from functools import partial
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote

import httptools

from crossbook.gateway.http import Request, Response

if TYPE_CHECKING:
    from crossbook.gateway.metrics import Metrics

Handle = Callable[[Request], Coroutine[Any, Any, Response]]
"""`GatewayApp.handle`: answers one request and never raises."""
log = logging.getLogger(__name__)
_perf = time.perf_counter_ns

MAX_PIPELINE = 32
_STATUS_LINES = {
    int(status): b"HTTP/1.1 %d %s\r\n" % (status, status.phrase.encode()) for status in HTTPStatus
}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d \r\n" % status


def _plain(status: int, message: bytes) -> bytes:
    return b"".join((
        _status_line(status), b"content-type: text/plain; charset=utf-8\r\n",
        b"content-length: %d\r\nconnection: close\r\n\r\n" % len(message), message,
    ))


class _Connection(asyncio.Protocol):
    __slots__ = (
        "_body", "_client", "_continue", "_headers", "_keep_alive", "_parser", "_paused",
        "_port", "_queue", "_received", "_running", "_server", "_size", "_too_big", "_url",
        "_write_paused", "activity", "transport",
    )

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._parser = httptools.HttpRequestParser(self)
        with contextlib.suppress(AttributeError):  # answer the first of pipelined requests
            self._parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self.transport: asyncio.Transport | None = None
        self._client = ""
        self._port = 0
        self._received = 0
        self._queue: deque[tuple[Request, bool]] = deque()
        self._running = False
        self._keep_alive = True
        self._paused = False
        self._write_paused = False
        self._url = b""
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._continue = False
        self._too_big = False
        self._size = 0
        self.activity = 0
        """Requests started on this connection; the idle sweep compares it between sweeps."""

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self._client, self._port = peer[0], peer[1]
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.closed(self)
        self._queue.clear()
        self.transport = None

    def pause_writing(self) -> None:
        self._write_paused = True
        self._set_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._set_reading()

    def data_received(self, data: bytes) -> None:
        self._received = _perf()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._keep_alive = False  # answered as plain HTTP; what follows is not HTTP
        except httptools.HttpParserError:
            self._fail(400, b"Invalid HTTP request received.")

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []
        self._too_big = False
        self._size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        self._headers[name] = value
        if name == b"expect" and value.lower() == b"100-continue":
            if self._running or self._queue:
                self._continue = True  # after the requests ahead are answered
            else:
                self._write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        if self._too_big:
            return
        self._body.append(body)
        self._size += len(body)
        if self._size > self._server.max_body:
            self._too_big = True
            self._body = []

    def on_message_complete(self) -> None:
        if not self._keep_alive and self.transport is not None and self.transport.is_closing():
            return  # refused: nothing pipelined behind the refusal runs
        parser = self._parser
        keep_alive = parser.should_keep_alive()
        if self._too_big:
            self._fail(413, b"Request body too large.")
            return
        url = self._url
        path_bytes, _, query = url.partition(b"?")
        path_bytes = path_bytes.partition(b"#")[0]
        query = query.partition(b"#")[0]
        if path_bytes[:1] != b"/":  # absolute form: http://host/path
            try:
                parsed = httptools.parse_url(url)
            except httptools.HttpParserInvalidURLError:
                self._fail(400, b"Invalid HTTP request received.")
                return
            path_bytes, query = parsed.path or b"/", parsed.query or b""
        path = path_bytes.decode("latin-1")
        if "%" in path:
            path = unquote(path)
        body = self._body
        method = parser.get_method().decode("ascii")
        request = Request(
            method, path, query, self._headers,
            body[0] if len(body) == 1 else b"".join(body), self._client, {},
        )
        request.received_ns = self._received
        self._queue.append((request, keep_alive))
        if len(self._queue) >= MAX_PIPELINE:
            self._set_reading()
        if not self._running:
            self._next()

    # answering

    def _next(self) -> None:
        if not self._queue or self.transport is None:
            self._running = False
            if self._continue and self.transport is not None:
                self._continue = False
                self._write(_CONTINUE)
            return
        self._running = True
        self.activity += 1
        request, keep_alive = self._queue.popleft()
        if self._paused:
            self._set_reading()
        self._step(self._server.handle(request), request, keep_alive)

    def _step(self, coro: Coroutine[Any, Any, Response], request: Request, keep_alive: bool,
              _: object = None) -> None:
        """Run the handler's coroutine up to its next wait, without a task: it resumes from
        the awaited future's callback. `GatewayApp.handle` runs every handler that needs a
        task (timeouts, cancellation) inside one of its own (`Route.inline`)."""
        try:
            awaited = coro.send(None)
        except StopIteration as done:
            self._answer(done.value, request, keep_alive)
            return
        except Exception:  # GatewayApp.handle answers its own errors; this is a bug
            log.exception("HTTP handler failed")
            self._fail(500, b"Internal Server Error")
            return
        if getattr(awaited, "_asyncio_future_blocking", False):
            awaited._asyncio_future_blocking = False
            awaited.add_done_callback(partial(self._step, coro, request, keep_alive))
        elif awaited is None:  # a bare yield (sleep(0))
            self._server.loop.call_soon(self._step, coro, request, keep_alive)
        else:
            coro.close()
            log.error("HTTP handler awaited %r, not a future", awaited)
            self._fail(500, b"Internal Server Error")

    def _answer(self, response: Response, request: Request, keep_alive: bool) -> None:
        keep_alive = keep_alive and self._keep_alive and not self._server.should_exit
        sent = _perf()
        self._respond(response, request.method == "HEAD", keep_alive)
        written = _perf()
        metrics = self._server.metrics
        metrics.observe_ns("response", written - sent)
        if request.submitted_ns:  # an order: the node's whole share of its latency
            metrics.observe_ns("request", written - request.received_ns)
            if metrics.trace is not None:
                metrics.trace.requests.append((
                    self._port, request.received_ns, request.submitted_ns, request.resumed_ns,
                    written, response.status,
                ))
        if not keep_alive:
            if self.transport is not None:
                self.transport.close()
            self._queue.clear()
            self._running = False
            return
        self._next()

    def _respond(self, response: Response, head: bool, keep_alive: bool) -> None:
        body = response.body
        out = [_status_line(response.status)]
        for name, value in response.headers:
            out += (name, b": ", value, b"\r\n")
        out.append(b"content-length: %d\r\n" % len(body))
        if not keep_alive:
            out.append(b"connection: close\r\n")
        out.append(b"\r\n")
        if not head:
            out.append(body)
        self._write(b"".join(out))

    def _write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def _fail(self, status: int, message: bytes) -> None:
        self._write(_plain(status, message))
        self._queue.clear()
        self._keep_alive = False
        if self.transport is not None:
            self.transport.close()

    def _set_reading(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        pause = self._write_paused or len(self._queue) >= MAX_PIPELINE
        if pause and not self._paused:
            self._paused = True
            transport.pause_reading()
        elif not pause and self._paused:
            self._paused = False
            transport.resume_reading()

    # server side

    @property
    def idle(self) -> bool:
        return not self._running and not self._queue

    def shutdown(self) -> None:
        """Close now if idle, else after the request in flight is answered."""
        self._keep_alive = False
        if self.idle and self.transport is not None:
            self.transport.close()


class HttpServer:
    """Serves `handle` on `host:port` (or on a bound `sock`) until told to exit; `metrics`
    gets the `response` stage (writing the answer)."""

    def __init__(
        self, handle: Handle, metrics: Metrics, host: str = "127.0.0.1", port: int = 8000, *,
        sock: Any = None, backlog: int = 4096, idle_timeout: float = 5.0,
        drain_timeout: float = 10.0, max_body: int = 4 << 20,
    ) -> None:
        self.handle = handle
        self.metrics = metrics
        self.host, self.port, self.sock = host, port, sock
        self.backlog = backlog
        self.idle_timeout = idle_timeout
        self.drain_timeout = drain_timeout
        self.max_body = max_body
        self.should_exit = False
        self.connections: set[_Connection] = set()
        self.loop = asyncio.get_running_loop()
        self.started = asyncio.Event()
        """Set once listening; `address` is then the bound (host, port)."""
        self.address: tuple[str, int] = (host, port)
        self._exit = asyncio.Event()
        self._drained = asyncio.Event()

    def closed(self, connection: _Connection) -> None:
        self.connections.discard(connection)
        if self.should_exit and not self.connections:
            self._drained.set()

    def exit(self) -> None:
        self.should_exit = True
        self._exit.set()

    async def serve(self) -> None:
        loop = self.loop
        handled: list[signal.Signals] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.exit)
                handled.append(sig)
        if self.sock is not None:
            server = await loop.create_server(
                lambda: _Connection(self), sock=self.sock, backlog=self.backlog
            )
        else:
            server = await loop.create_server(
                lambda: _Connection(self), self.host, self.port, backlog=self.backlog,
                reuse_address=True,
            )
        self.address = server.sockets[0].getsockname()[:2]
        self.started.set()
        sweeper = loop.create_task(self._sweep_idle())
        try:
            while not self.should_exit:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._exit.wait(), 0.5)
        finally:
            sweeper.cancel()
            server.close()
            for connection in list(self.connections):
                connection.shutdown()
            if self.connections:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._drained.wait(), self.drain_timeout)
            for connection in list(self.connections):
                if connection.transport is not None:
                    connection.transport.abort()
            for sig in handled:
                loop.remove_signal_handler(sig)

    async def _sweep_idle(self) -> None:
        seen: dict[_Connection, int] = {}
        while True:
            await asyncio.sleep(self.idle_timeout)
            now: dict[_Connection, int] = {}
            for connection in list(self.connections):
                if connection.idle and seen.get(connection) == connection.activity:
                    connection.shutdown()
                else:
                    now[connection] = connection.activity
            seen = now
