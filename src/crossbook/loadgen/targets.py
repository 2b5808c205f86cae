"""Connections of `crossbook bench` to a node: binary, WebSocket or REST, one account each.

Contract: `await connection.open()`, then `connection.send(action, answered)` sends the
action and calls `answered(code)` once with its outcome: 0 when it succeeded, else the reject
code (`LOST` when the connection dropped first); the connection keeps the flow's view of its
account's open orders current from every answer and, for binary and WebSocket, every
unsolicited report or user event. Acknowledged orders (answered accepted) are appended to
`acked` as `(account, client_order_id, order_id)`. A request whose connection dropped
before its answer is `LOST`.

- `BinaryTarget`: one `BinaryClient` session per connection; requests pipeline, so any
  number may be in flight. Requests are built straight from the action and answered through
  the client's callback form (no future per request). Heartbeats every 5 s (a connection
  is dropped after 15 s of silence, not 3: the load generator shares the cores with the
  node). `close()` first waits, up to 30 s, for a dropped session to be caught up again,
  so the reports of requests answered `LOST` still reach the flow and `acked`.
- `WsTarget`: one SDK `Stream` on the native `/v1/ws` per connection, logged in with the
  account's key and subscribed to its `user` channel; `place`, `cancel` and `amend`
  requests pipeline (any number in flight, replies matched by request id) through the
  stream's callback form (no task or future per request). The flow's open orders follow
  the user events (`accepted`, `trade`, `canceled`, `expired`, `amended`), folded as they
  arrive, so orders filled by other connections leave it as they do for binary. `exact` is
  False once the stream reconnected: that account's open orders are then not known exactly.
- `RestTarget`: one keep-alive HTTP/1.1 connection per account, signed natively; requests
  are sent one at a time per connection, in order (no HTTP pipelining), queued while busy.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any, Final

import msgspec

from crossbook.client.binary import BinaryClient, BinaryClientError, ConnectionLost
from crossbook.client.calls import sign
from crossbook.client.errors import ApiError, CrossbookError
from crossbook.client.stream import Reconnected, Stream
from crossbook.domain.enums import OrderStatus, OrderType, StpMode, TimeInForce
from crossbook.domain.rejects import Reject
from crossbook.loadgen.flow import Action, OrderFlow
from crossbook.protocol.binary import packer
from crossbook.protocol.binary_messages import (
    AcceptedReport,
    Amend,
    AmendedReport,
    Cancel,
    CanceledReport,
    ExpiredReport,
    FillReport,
    NewOrder,
    RejectedReport,
    Report,
)
from crossbook.protocol.ws import OrderEvent

_NEW_ORDER: Final = packer(NewOrder)
_CANCEL: Final = packer(Cancel)
_AMEND: Final = packer(Amend)
_LIMIT: Final = OrderType.LIMIT
_GTC: Final = TimeInForce.GTC
_NO_STP: Final = StpMode.NONE
"""Enum members as module constants: reading `OrderType.LIMIT` from its class goes through
the enum metaclass's `__getattr__` hook on CPython 3.11 (about 40 times a global load)."""
CLOSED = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED,
                    OrderStatus.EXPIRED_IN_MATCH, OrderStatus.REJECTED})
LOST = -1
"""Outcome code of a request whose connection dropped (outcome unknown)."""

Answered = Callable[[int], None]
"""Called once per action: 0 when it succeeded, else its reject code or `LOST`."""


@dataclass(frozen=True, slots=True)
class Grid:
    """An instrument's steps, to print ticks and lots as decimals for REST."""

    tick: Decimal
    lot: Decimal

    def price(self, ticks: int) -> str:
        return str(self.tick * ticks)

    def qty(self, lots: int) -> str:
        return str(self.lot * lots)

    def ticks(self, price: str | None) -> int:
        return int(Decimal(price or "0") / self.tick)

    def lots(self, qty: str | None) -> int:
        return int(Decimal(qty or "0") / self.lot)


Acked = list[tuple[int, str, int]]


class BinaryTarget:
    def __init__(
        self, account: int, key: str, secret: str, flow: OrderFlow, acked: Acked, *,
        host: str | None = None, port: int | None = None, path: str | None = None,
    ) -> None:
        self.account, self.flow, self.acked = account, flow, acked
        self.client = BinaryClient(
            key, secret.encode(), host=host, port=port, path=path, on_report=self._report,
            heartbeat_ms=5000,
        )

    async def open(self) -> None:
        await self.client.connect()

    async def close(self, settle: float = 30.0) -> None:
        client = self.client
        deadline = asyncio.get_running_loop().time() + settle
        while not client.caught_up and client.error is None:
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.05)
        await client.close()

    def send(self, action: Action, answered: Answered) -> None:
        client = self.client
        request_id = client.next_request_id()
        kind = action.kind
        # encoded straight from the action (`packer`): no request message is built
        try:
            if kind == "new":
                client.send_frame(NewOrder, request_id, _NEW_ORDER(
                    request_id, action.symbol, action.side, _LIMIT, action.qty, action.price,
                    _GTC, 0, 0, 0, False, 0, _NO_STP, action.client_order_id, 0,
                ), partial(_settle, answered))
            elif kind == "cancel":
                client.send_frame(Cancel, request_id, _CANCEL(
                    request_id, action.symbol, action.order_id, "", 0,
                ), partial(_settle, answered))
            else:
                client.send_frame(Amend, request_id, _AMEND(
                    request_id, action.symbol, action.order_id, "", action.qty, action.price, 0,
                ), partial(_settle, answered))
        except BinaryClientError:  # not connected (reconnecting); answered later, never
            asyncio.get_running_loop().call_soon(answered, LOST)  # re-entrantly

    def _report(self, report: Report) -> None:
        flow, account = self.flow, self.account
        kind = type(report)
        if kind is AcceptedReport:
            assert isinstance(report, AcceptedReport)
            flow.accepted(account, report.order_id, report.symbol, report.qty, report.price)
            self.acked.append((account, report.client_order_id, report.order_id))
        elif kind is FillReport:
            assert isinstance(report, FillReport)
            if report.status in CLOSED:
                flow.closed(account, report.order_id)
        elif kind is CanceledReport or kind is ExpiredReport:
            assert isinstance(report, CanceledReport | ExpiredReport)
            flow.closed(account, report.order_id)
        elif kind is AmendedReport:
            assert isinstance(report, AmendedReport)
            flow.amended(account, report.order_id, report.qty, report.price)


def _settle(answered: Answered, answer: Report | ConnectionLost) -> None:
    kind = answer.__class__
    if kind is RejectedReport:
        assert isinstance(answer, RejectedReport)
        answered(answer.code)
    elif kind is ConnectionLost:
        answered(LOST)
    else:
        answered(0)


_OPEN = frozenset({"new", "partially_filled"})
_GONE = frozenset({Reject.UNKNOWN_ORDER, Reject.ORDER_NOT_OPEN})
"""Rejects of a cancel or amend that show the order is no longer open."""


class WsTarget:
    def __init__(
        self, account: int, key: str, secret: str, flow: OrderFlow, acked: Acked, url: str,
        grids: dict[str, Grid],
    ) -> None:
        self.account, self.flow, self.acked, self.grids = account, flow, acked, grids
        # A slow node shows up as latency, not as lost requests. User events are folded as
        # they arrive (no queue, no consumer task).
        self.stream = Stream(url, api_key=key, secret=secret, request_timeout=120.0,
                             max_delay=1.0, on_message=self._message)
        self.connections = 0

    @property
    def exact(self) -> bool:
        return self.connections <= 1

    async def open(self) -> None:
        await self.stream.subscribe("user")
        await self.stream.start()

    async def close(self) -> None:
        # Events precede the reply to a later request on the same socket: after the pong
        # every event of the run has been folded.
        with contextlib.suppress(CrossbookError, TimeoutError):
            await asyncio.wait_for(self.stream.request("ping"), 10)
        await self.stream.close()

    def send(self, action: Action, answered: Answered) -> None:
        grid = self.grids[action.symbol]
        fields: dict[str, Any]
        if action.kind == "new":
            op, fields = "place", {"order": {
                "symbol": action.symbol, "side": "buy" if action.side == 1 else "sell",
                "type": "limit", "quantity": grid.qty(action.qty),
                "price": grid.price(action.price), "client_order_id": action.client_order_id,
            }}
        elif action.kind == "cancel":
            op, fields = "cancel", {"symbol": action.symbol, "order_id": action.order_id}
        elif action.qty:
            op, fields = "amend", {"symbol": action.symbol, "order_id": action.order_id,
                                   "quantity": grid.qty(action.qty)}
        else:
            op, fields = "amend", {"symbol": action.symbol, "order_id": action.order_id,
                                   "price": grid.price(action.price)}
        try:
            self.stream.send(op, fields, partial(self._answered, action, answered))
        except CrossbookError:  # not connected (reconnecting): nothing was sent
            answered(LOST)

    def _answered(
        self, action: Action, answered: Answered, result: Any, error: BaseException | None
    ) -> None:
        if error is None:
            if action.kind == "new":
                self.acked.append((self.account, action.client_order_id,
                                   int(result["order_id"])))
            answered(0)
        elif isinstance(error, ApiError):
            if action.kind != "new" and error.code in _GONE:
                self.flow.closed(self.account, action.order_id)
            answered(int(error.code))
        else:  # the connection dropped or the answer never came: the outcome is unknown
            answered(LOST)

    def _message(self, message: object) -> None:
        if type(message) is OrderEvent:
            self._event(message)
        elif isinstance(message, Reconnected):
            self.connections += 1

    def _event(self, event: OrderEvent) -> None:
        flow, account, kind = self.flow, self.account, event.event
        if kind == "accepted":
            grid = self.grids[event.symbol]
            flow.accepted(account, event.order_id, event.symbol, grid.lots(event.quantity),
                          grid.ticks(event.price))
        elif event.status not in _OPEN:
            flow.closed(account, event.order_id)
        elif kind == "amended":
            grid = self.grids[event.symbol]
            flow.amended(account, event.order_id, grid.lots(event.quantity),
                         grid.ticks(event.price))


class _Answer(msgspec.Struct):
    order_id: int = 0
    status: str = ""
    quantity: str = "0"
    price: str | None = None
    code: int = 0


_decode = msgspec.json.Decoder(_Answer).decode


class RestTarget:
    def __init__(
        self, account: int, key: str, secret: str, flow: OrderFlow, acked: Acked,
        host: str, port: int, grids: dict[str, Grid],
    ) -> None:
        self.account, self.key, self.secret = account, key, secret
        self.flow, self.acked, self.grids = flow, acked, grids
        self.host, self.port = host, port
        self.queue: deque[tuple[Action, Answered]] = deque()
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.writer is not None:
            self.writer.close()

    def send(self, action: Action, answered: Answered) -> None:
        self.queue.append((action, answered))
        self.wake.set()

    async def _run(self) -> None:
        while True:
            if not self.queue:
                self.wake.clear()
                await self.wake.wait()
                continue
            action, answered = self.queue.popleft()
            try:
                result = await self._request(action)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                result = LOST
                with contextlib.suppress(OSError):
                    self.reader, self.writer = await asyncio.open_connection(
                        self.host, self.port)
            answered(result)

    async def _request(self, action: Action) -> int:
        grid = self.grids[action.symbol]
        if action.kind == "new":
            method, path = "POST", "/v1/orders"
            body = (b'{"symbol":"%s","side":"%s","type":"limit","quantity":"%s","price":"%s",'
                    b'"client_order_id":"%s"}' % (
                        action.symbol.encode(), b"buy" if action.side == 1 else b"sell",
                        grid.qty(action.qty).encode(), grid.price(action.price).encode(),
                        action.client_order_id.encode()))
        elif action.kind == "cancel":
            method, path, body = "DELETE", f"/v1/orders/{action.order_id}", b""
        else:
            method, path = "PATCH", f"/v1/orders/{action.order_id}"
            field = (b'"quantity":"%s"' % grid.qty(action.qty).encode() if action.qty
                     else b'"price":"%s"' % grid.price(action.price).encode())
            body = b"{" + field + b"}"
        status, payload = await self._exchange(method, path, body)
        answer = _decode(payload) if payload else _Answer()
        if status >= 300:
            if action.kind != "new" and answer.code in _GONE:
                self.flow.closed(self.account, action.order_id)
            return answer.code or status
        self._track(action, answer, grid)
        return 0

    def _track(self, action: Action, answer: _Answer, grid: Grid) -> None:
        flow, account = self.flow, self.account
        if action.kind == "new":
            self.acked.append((account, action.client_order_id, answer.order_id))
            if answer.status in _OPEN:
                flow.accepted(account, answer.order_id, action.symbol, action.qty, action.price)
        elif answer.status not in _OPEN:
            flow.closed(account, action.order_id)
        else:
            flow.amended(account, action.order_id, grid.lots(answer.quantity),
                         grid.ticks(answer.price))

    async def _exchange(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        reader, writer = self.reader, self.writer
        assert reader is not None
        assert writer is not None
        ts = time.time_ns() // 1_000_000
        signature = sign(self.secret, ts, method, path, body)
        writer.write(
            f"{method} {path} HTTP/1.1\r\nhost: {self.host}\r\nx-cb-apikey: {self.key}\r\n"
            f"x-cb-timestamp: {ts}\r\nx-cb-signature: {signature}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        payload = await reader.readexactly(length) if length else b""
        return status, payload


Target = BinaryTarget | WsTarget | RestTarget
Factory = Callable[[int, str, str], Target]
