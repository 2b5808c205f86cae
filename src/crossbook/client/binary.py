"""Asyncio client of the binary order-entry protocol (docs/protocol/binary.md).

Contract:

- `await BinaryClient(api_key, secret, host=..., port=...)`.connect() (or `path=` for a Unix
  socket) opens the connection and logs in; `LoginRejectedError` if the server refuses.
  `async with` connects and closes.
- Requests pipeline: `new_order`, `cancel`, `amend`, `cancel_all` (or `submit` with a built
  request) write at once and return a future of the request's answer: `AcceptedReport`,
  `CanceledReport`, `AmendedReport` or `CancelAllReport`, or `RejectedReport`. Frames written
  in one event-loop turn go out in one `write` (batching). `drain()` waits while the socket
  buffer is full. `send(request, on_answer)` is the same without a future: `on_answer` is
  called once, with the answer or with the `ConnectionLost` the future would have raised
  (the cheaper form for a caller that keeps many requests in flight). `send_frame(cls,
  request_id, frame, on_answer)` is `send` for a request the caller encoded itself
  (`protocol.binary.packer(cls)`: no message object at all).
- Every report (answers and unsolicited fills, cancels, expiries) goes, in session `seq`
  order and each once, to `on_report` if given, else to the `reports()` async iterator.
- Heartbeats every `heartbeat_ms` the server agreed; a connection silent for three intervals
  is dropped. After a drop the client reconnects with backoff, resumes its session, and asks
  for every report after the last `seq` it delivered (`ResendRequest`). Futures of requests
  in flight at the drop fail with `ConnectionLost`: their outcome arrives as reports.
  `caught_up` tells when the session is connected again with no resend outstanding.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from functools import partial
from typing import Any, Final, cast, get_args

from crossbook.domain.enums import OrderType, Side
from crossbook.domain.rejects import Reject
from crossbook.domain.values import AccountId, Lots, Nanos, OrderId, Ticks
from crossbook.protocol.binary import FrameDecoder, ProtocolError, encode, sign_login
from crossbook.protocol.binary_messages import (
    REVISION,
    SERVER_MESSAGES,
    AcceptedReport,
    Amend,
    AmendedReport,
    Cancel,
    CancelAll,
    CancelAllReport,
    CanceledReport,
    Heartbeat,
    Login,
    LoginAccepted,
    LoginRejected,
    Logout,
    Message,
    NewOrder,
    RejectedReport,
    Report,
    Request,
    ResendDone,
    ResendRequest,
)

ANSWERS: Final[dict[type[Message], tuple[type[Message], ...]]] = {
    NewOrder: (AcceptedReport, RejectedReport),
    Cancel: (CanceledReport, RejectedReport),
    Amend: (AmendedReport, RejectedReport),
    CancelAll: (CancelAllReport, RejectedReport),
}
"""The reports that answer each request type (the first one carrying its request id)."""
_REPORTS: Final[frozenset[type[Message]]] = frozenset(get_args(Report))
_NO_RECONNECT: Final = {Reject.GATEWAY_UNAUTHORIZED, Reject.GATEWAY_FORBIDDEN}


class BinaryClientError(Exception):
    """Base of the client's errors."""


class LoginRejectedError(BinaryClientError):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"login rejected ({code}): {message}")
        self.code = code


class ConnectionLost(BinaryClientError, ConnectionError):
    """The connection dropped before the request's answer; it will arrive as a report."""


OnAnswer = Callable[[Report | ConnectionLost], None]
"""Called once with a request's answer, or with `ConnectionLost`."""


def _resolve(future: asyncio.Future[Report], answer: Report | ConnectionLost) -> None:
    if future.done():
        return
    if isinstance(answer, ConnectionLost):
        future.set_exception(answer)
    else:
        future.set_result(answer)


class _Connection(asyncio.Protocol):
    def __init__(self, client: BinaryClient) -> None:
        self.client = client
        self.decoder = FrameDecoder(accept=SERVER_MESSAGES)
        self.transport: asyncio.Transport | None = None
        self.writable = asyncio.Event()
        self.writable.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        messages, error = self.decoder.feed(data)
        self.client._received(self, messages, error)

    def connection_lost(self, exc: Exception | None) -> None:
        self.writable.set()
        self.client._lost(self, exc)

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()


class BinaryClient:
    """One binary protocol session over TCP or a Unix socket; see the module docstring."""

    def __init__(
        self,
        api_key: str,
        secret: bytes,
        *,
        host: str | None = None,
        port: int | None = None,
        path: str | None = None,
        session_id: int = 0,
        last_seq: int = 0,
        heartbeat_ms: int = 1000,
        reconnect: bool = True,
        reconnect_delays: tuple[float, float] = (0.05, 2.0),
        login_timeout: float = 5.0,
        on_report: Callable[[Report], None] | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        if (path is None) == (host is None or port is None):
            raise ValueError("give either host and port, or path")
        self.api_key, self._secret = api_key, secret
        self._host, self._port, self._path = host, port, path
        self.session_id = session_id
        self.last_seq = last_seq
        """Seq of the last report delivered; resend after a reconnect starts after it."""
        self.heartbeat_ms = heartbeat_ms
        self.account = AccountId(0)
        self._reconnect, self._delays = reconnect, reconnect_delays
        self._login_timeout = login_timeout
        self._on_report = on_report
        self._clock = clock
        self._queue: asyncio.Queue[Report | None] = asyncio.Queue()
        self._pending: dict[int, tuple[OnAnswer, tuple[type[Message], ...]]] = {}
        self._next_request_id = 0
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._connection: _Connection | None = None
        self._login: asyncio.Future[LoginAccepted] | None = None
        self._resending = False
        self._closing = False
        self._established = False
        self._last_received = 0.0
        self._last_sent = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = asyncio.Event()
        self.error: BaseException | None = None
        """Why the client stopped on its own (login refused, server logout), if it did."""

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> BinaryClient:
        await self.connect()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def connect(self) -> LoginAccepted:
        """Open the connection, log in, start heartbeats; resume and resend if reconnecting."""
        loop = asyncio.get_running_loop()
        if self._path is not None:
            _, connection = await loop.create_unix_connection(lambda: _Connection(self), self._path)
        else:
            assert self._host is not None  # checked in __init__
            assert self._port is not None
            _, connection = await loop.create_connection(
                lambda: _Connection(self), self._host, self._port
            )
        self._connection = connection
        self._established = False
        self._last_received = loop.time()
        self._login = loop.create_future()
        timestamp, nonce = Nanos(self._clock()), secrets.randbits(64)
        signature = sign_login(self._secret, self.api_key, timestamp, nonce, self.session_id)
        self._send(
            Login(
                self.api_key,
                timestamp,
                nonce,
                self.session_id,
                self.heartbeat_ms,
                REVISION,
                signature,
            )
        )
        try:
            accepted = await asyncio.wait_for(asyncio.shield(self._login), self._login_timeout)
        except BaseException:
            self._abort()
            raise
        if accepted.session_id != self.session_id:
            self.session_id, self.last_seq = accepted.session_id, accepted.next_seq - 1
        elif accepted.next_seq - 1 > self.last_seq:
            self._request_resend()
        self.account, self.heartbeat_ms = accepted.account, accepted.heartbeat_ms
        self._established = True
        if not any(task.get_name() == "heartbeat" for task in self._tasks):
            self._spawn(self._heartbeats(), "heartbeat")
        return accepted

    async def close(self) -> None:
        """Log out and close; pending futures fail with `ConnectionLost`."""
        self._closing = True
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        connection = self._connection
        if connection is not None and connection.transport is not None:
            self._send(Logout(0, "bye"))
            self._flush()
            connection.transport.close()
        self._fail_pending("client closed")
        self._queue.put_nowait(None)
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    @property
    def caught_up(self) -> bool:
        """Logged in with no resend outstanding: every report the server announced is in."""
        return self._connection is not None and self._established and not self._resending

    # -- requests --------------------------------------------------------------------------

    def next_request_id(self) -> int:
        self._next_request_id += 1
        return self._next_request_id

    def submit(self, request: Request) -> asyncio.Future[Report]:
        """Send `request` now (batched with this turn's other frames); a future of its answer."""
        future: asyncio.Future[Report] = asyncio.get_running_loop().create_future()
        self.send(request, partial(_resolve, future))
        return future

    def send(self, request: Request, on_answer: OnAnswer) -> None:
        """Send `request` now (batched); `on_answer(answer)` once it comes (or the drop)."""
        self.send_frame(request.__class__, request.request_id, encode(request), on_answer)

    def send_frame(
        self, kind: type[Request], request_id: int, frame: bytes, on_answer: OnAnswer
    ) -> None:
        """`send` for a request of type `kind` already encoded as `frame` (with `request_id`)."""
        if self._connection is None or self._closing:
            raise BinaryClientError("not connected")
        pending = self._pending
        if request_id in pending:
            raise ValueError(f"request id {request_id} is still in flight")
        pending[request_id] = (on_answer, ANSWERS[kind])
        self._out.append(frame)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def new_order(
        self,
        symbol: str,
        side: Side,
        type: OrderType,
        *,
        qty: int = 0,
        price: int = 0,
        **options: object,
    ) -> asyncio.Future[Report]:
        """Place an order (every `NewOrder` field may be given by name)."""
        self._next_request_id += 1
        request_id = self._next_request_id
        if not options:
            return self.submit(NewOrder(request_id, symbol, side, type, Lots(qty), Ticks(price)))
        return self.submit(NewOrder(request_id, symbol, side, type, Lots(qty), Ticks(price),
                                    **options))  # type: ignore[arg-type]

    def cancel(
        self, symbol: str, order_id: int = 0, client_order_id: str = ""
    ) -> asyncio.Future[Report]:
        return self.submit(
            Cancel(self.next_request_id(), symbol, OrderId(order_id), client_order_id)
        )

    def amend(
        self,
        symbol: str,
        order_id: int = 0,
        client_order_id: str = "",
        *,
        qty: int = 0,
        price: int = 0,
    ) -> asyncio.Future[Report]:
        request_id = self.next_request_id()
        return self.submit(
            Amend(request_id, symbol, OrderId(order_id), client_order_id, Lots(qty), Ticks(price))
        )

    def cancel_all(self, symbol: str) -> asyncio.Future[Report]:
        return self.submit(CancelAll(self.next_request_id(), symbol))

    async def drain(self) -> None:
        """Wait until the connection's write buffer is below its high-water mark."""
        self._flush()
        if self._connection is not None:
            await self._connection.writable.wait()

    async def reports(self) -> AsyncIterator[Report]:
        """Reports in seq order, until the client closes (without `on_report` only)."""
        while (report := await self._queue.get()) is not None:
            yield report

    # -- internals -------------------------------------------------------------------------

    def _send(self, message: Message) -> None:
        self._out.append(encode(message))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        connection, out = self._connection, self._out
        if out and connection is not None and connection.transport is not None:
            connection.transport.write(b"".join(out))
            self._last_sent = asyncio.get_running_loop().time()
        self._out = []

    def _received(
        self, connection: _Connection, messages: list[Message], error: ProtocolError | None
    ) -> None:
        if connection is not self._connection:
            return
        self._last_received = asyncio.get_running_loop().time()
        report, reports = self._report, _REPORTS
        for message in messages:
            kind = message.__class__
            if kind in reports:
                report(message)  # type: ignore[arg-type]  # one of the report types
            elif kind is Heartbeat:
                assert isinstance(message, Heartbeat)
                if message.last_seq > self.last_seq and not self._resending:
                    self._request_resend()
            else:
                self._session_message(message)
        if error is not None and connection.transport is not None:
            self._send(Logout(error.code, error.message))
            self._flush()
            connection.transport.close()  # after the Logout is written

    def _report(self, report: Report) -> None:
        seq = report.seq
        if seq <= self.last_seq:
            return
        if seq != self.last_seq + 1:
            if not self._resending:
                self._request_resend()
            return
        self.last_seq = seq
        request_id = report.request_id
        if request_id:
            waiting = self._pending.get(request_id)
            if waiting is not None and report.__class__ in waiting[1]:
                del self._pending[request_id]
                waiting[0](report)
        if self._on_report is not None:
            self._on_report(report)
        else:
            self._queue.put_nowait(report)

    def _session_message(self, message: Message) -> None:
        login = self._login
        if isinstance(message, LoginAccepted):
            if login is not None and not login.done():
                login.set_result(message)
        elif isinstance(message, LoginRejected):
            self.error = LoginRejectedError(message.code, message.message)
            self._reconnect = False
            if login is not None and not login.done():
                login.set_exception(self.error)
        elif isinstance(message, ResendDone):
            self._resending = False
            if not message.complete:
                self.last_seq = max(self.last_seq, message.to_seq)
                self._request_resend()
            elif message.to_seq > self.last_seq:
                self._request_resend()
        elif isinstance(message, Logout):
            self.error = BinaryClientError(f"server logout ({message.code}): {message.message}")
            if message.code in _NO_RECONNECT:
                self._reconnect = False

    def _request_resend(self) -> None:
        self._resending = True
        self._send(ResendRequest(self.last_seq + 1))

    def _lost(self, connection: _Connection, exc: Exception | None) -> None:
        if connection is not self._connection:
            return
        self._connection = None
        self._resending = False
        self._out = []
        if self._login is not None and not self._login.done():
            self._login.set_exception(ConnectionLost(f"connection lost during login: {exc}"))
        self._fail_pending(f"connection lost: {exc}")
        if self._closing or not self._established:
            return  # a failed login is raised by `connect`, which its caller retries
        if self._reconnect:
            self._spawn(self._reconnect_loop(), "reconnect")
        else:
            self._closing = True
            self._queue.put_nowait(None)
            self._closed.set()

    def _fail_pending(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        for on_answer, _ in pending.values():
            on_answer(ConnectionLost(reason))

    def _abort(self) -> None:
        connection = self._connection
        if connection is not None and connection.transport is not None:
            connection.transport.abort()

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reconnect_loop(self) -> None:
        delay, ceiling = self._delays
        while not self._closing and self._reconnect:
            await asyncio.sleep(delay)
            try:
                await self.connect()
            except LoginRejectedError:
                break
            except (TimeoutError, OSError, ConnectionLost):
                delay = min(delay * 2, ceiling)
                continue
            return
        self._closing = True
        self._queue.put_nowait(None)
        self._closed.set()

    async def _heartbeats(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            interval = self.heartbeat_ms / 1000
            await asyncio.sleep(interval / 2)
            if self._connection is None:
                continue
            now = loop.time()
            if now - self._last_received > 3 * interval:
                self._abort()
            elif now - self._last_sent >= interval / 2:
                self._send(Heartbeat(self.last_seq))


__all__ = [
    "ANSWERS",
    "BinaryClient",
    "BinaryClientError",
    "ConnectionLost",
    "LoginRejectedError",
]
