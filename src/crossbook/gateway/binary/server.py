"""The binary order-entry server: one asyncio protocol per connection, over TCP or Unix.

Contract (docs/protocol/binary.md is the protocol):
- The first frame must be `Login` (else `Logout(LOGIN_REQUIRED)` and close). A refused login
  gets `LoginRejected` and a close; an accepted one `LoginAccepted(session_id, account,
  next_seq, heartbeat_ms, revision)`. Resuming a session moves it to the new connection and
  logs the old one out.
- Every whole frame a read returned is decoded and handled in that turn; requests become
  domain commands, and a read's commands go to the sequencer together at the end of the
  turn (pipelining): behind one future when the bus has `submit_many` (a full inbox then
  takes as many as fit, one by one), else one `submit` each. A request naming another
  account from a non-privileged session, a full inbox or a stopped sequencer is answered
  with a `RejectedReport` (`GATEWAY_FORBIDDEN`, `GATEWAY_THROTTLED`, `GATEWAY_UNAVAILABLE`)
  without reaching the journal; every other answer comes from `ReportRouter`, after
  durability.
- Rate limits: with a `RateLimiter` (the node passes the one its REST and WebSocket gateways
  use), every request for the session's own account is charged to the session's API key
  before it is submitted, as its REST route would be (`limits.ORDER_ENTRY_WEIGHT`; `NewOrder`
  and `Amend` also count one order). Over a budget it is answered at once with a
  `RejectedReport` `GATEWAY_RATE_LIMITED` (the message says when to retry), never reaches
  the sequencer, and the session stays open. Requests a privileged session makes for
  another account are not charged here: the gateway worker that sends them charged the
  originating key already.
- Output is batched: frames queued in one loop turn go out in one `write`.
- Malformed bytes (the decoder's coded `ProtocolError`), a second `Login`, or an unexpected
  exception while handling a frame: `Logout(code, message)`, then close. The node never
  stops because of a peer. A peer that does not read is dropped once its write buffer
  passes `max_buffer` bytes; its reports stay in the session store for resend.
- Heartbeats: a `Heartbeat(last_seq)` after one interval without output; a connection
  silent for three intervals is logged out with `HEARTBEAT_TIMEOUT`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from crossbook.domain import commands as cmd
from crossbook.domain.rejects import Reject
from crossbook.domain.values import AccountId, Nanos, OrderId
from crossbook.gateway.binary.reports import ReportRouter
from crossbook.gateway.binary.sessions import LoginPolicy, Session, SessionRegistry
from crossbook.gateway.context import BatchBus, CommandBus
from crossbook.gateway.limits import ORDER_ENTRY_WEIGHT, RateLimiter
from crossbook.gateway.views import KeyRecord
from crossbook.protocol.binary import FrameDecoder, ProtocolErrorCode, encode
from crossbook.protocol.binary_messages import (
    CLIENT_MESSAGES,
    REVISION,
    Amend,
    Cancel,
    CancelAll,
    Heartbeat,
    Login,
    LoginAccepted,
    LoginRejected,
    Logout,
    NewOrder,
    RejectedReport,
    ResendDone,
    ResendRequest,
)
from crossbook.sequencer.loop import SequencerError, Throttled

log = logging.getLogger(__name__)

_Command = cmd.PlaceOrder | cmd.CancelOrder | cmd.AmendOrder | cmd.CancelAllOrders
_Request = tuple[_Command, int]
"""A request's command and request id, read and charged, not yet submitted."""


MIN_HEARTBEAT_MS = 50
MAX_HEARTBEAT_MS = 60_000


class BinaryServer:
    """Sessions, routing and listeners of the binary protocol for one node."""

    def __init__(
        self,
        bus: CommandBus,
        keys: dict[str, KeyRecord],
        *,
        keep: int = 65_536,
        max_sessions: int = 4_096,
        skew_ns: int = 10_000_000_000,
        max_buffer: int = 64 << 20,
        record_origins: bool = False,
        clock: Callable[[], int] = time.time_ns,
        limits: RateLimiter | None = None,
    ) -> None:
        self.bus = bus
        self.submit_many = bus.submit_many if isinstance(bus, BatchBus) else None
        self.limits = limits
        self.policy = LoginPolicy(keys, skew_ns)
        self.registry = SessionRegistry(keep, max_sessions)
        self.router = ReportRouter(self.registry, record_origins=record_origins)
        self.max_buffer = max_buffer
        self.clock = clock
        self.connections: set[BinaryConnection] = set()
        self.servers: list[asyncio.Server] = []
        self._ticker: asyncio.Task[None] | None = None

    async def listen_tcp(self, host: str, port: int) -> tuple[str, int]:
        server = await asyncio.get_running_loop().create_server(
            lambda: BinaryConnection(self), host, port, backlog=4096
        )
        self._started(server)
        address = server.sockets[0].getsockname()
        return str(address[0]), int(address[1])

    async def listen_unix(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a stale socket of a previous run
        server = await asyncio.get_running_loop().create_unix_server(
            lambda: BinaryConnection(self), str(path), backlog=4096
        )
        os.chmod(path, 0o600)
        self._started(server)

    def _started(self, server: asyncio.Server) -> None:
        self.servers.append(server)
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._heartbeats())

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.connections):
            connection.logout(0, "server shutting down")
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for server in self.servers:
            await server.wait_closed()

    async def _heartbeats(self, tick: float = 0.05) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            for connection in list(self.connections):
                connection.tick(now)


class BinaryConnection(asyncio.Protocol):
    __slots__ = (
        "closing", "decoder", "flush_scheduled", "heartbeat", "last_received", "last_sent",
        "loop", "out", "server", "session", "transport",
    )

    def __init__(self, server: BinaryServer) -> None:
        self.server = server
        self.decoder = FrameDecoder(accept=CLIENT_MESSAGES)
        self.transport: asyncio.Transport | None = None
        self.session: Session | None = None
        self.out: list[bytes] = []
        self.flush_scheduled = False
        self.closing = False
        self.heartbeat = 1.0
        self.loop = asyncio.get_running_loop()
        self.last_received = self.last_sent = self.loop.time()

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.closing = True
        session = self.session
        if session is not None and session.outbox is self:
            session.outbox = None
        self.transport = None

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.last_received = self.loop.time()
        frames, error = self.decoder.feed_values(data)
        try:
            if frames:
                self._handle(frames)
        except Exception:  # a bug must cost one session, never the node
            log.exception("binary session failed while handling a frame")
            self.logout(ProtocolErrorCode.BAD_FIELD, "internal error handling the frame")
            return
        if error is not None:
            self.logout(error.code, error.message[:64])

    # -- Outbox ------------------------------------------------------------------------------

    def queue(self, frame: bytes) -> None:
        self.out.append(frame)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self.flush)

    def close_session(self, code: int, message: str) -> None:
        self.logout(code, message)

    def flush(self) -> None:
        self.flush_scheduled = False
        transport, out = self.transport, self.out
        if not out or transport is None:
            return
        self.out = []
        transport.write(b"".join(out))
        self.last_sent = self.loop.time()
        if transport.get_write_buffer_size() > self.server.max_buffer:
            log.warning("binary session dropped: the peer does not read its reports")
            self.closing = True
            transport.abort()

    def logout(self, code: int, message: str) -> None:
        if self.closing or self.transport is None:
            return
        self.queue(encode(Logout(int(code), message)))
        self.flush()
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def tick(self, now: float) -> None:
        if self.session is None:
            if now - self.last_received > 10.0:
                self.logout(ProtocolErrorCode.LOGIN_REQUIRED, "no Login received")
            return
        interval = self.heartbeat
        if now - self.last_received > 3 * interval:
            self.logout(ProtocolErrorCode.HEARTBEAT_TIMEOUT, "nothing received for 3 intervals")
        elif now - self.last_sent >= interval and not self.out:
            self.queue(encode(Heartbeat(self.session.last_seq)))

    # -- frames ------------------------------------------------------------------------------

    def _handle(self, frames: list[tuple[Any, ...]]) -> None:
        """Handle decoded frames, `(cls, *fields)` each (`FrameDecoder.feed_values`): the
        requests are read field by field into commands, without building their messages."""
        requests: list[_Request] = []
        try:
            self._read(frames, requests)
        finally:  # what was read before a logout or a failure still goes in
            if requests:
                session = self.session
                assert session is not None
                self._submit_all(session, requests)

    def _read(self, frames: list[tuple[Any, ...]], requests: list[_Request]) -> None:
        keys = self.server.policy.keys
        session = self.session
        for values in frames:
            if self.closing:
                return
            kind = values[0]
            if session is None:
                if kind is Login:
                    self._login(Login(*values[1:]))
                    session = self.session
                else:
                    self.logout(ProtocolErrorCode.LOGIN_REQUIRED, "the first frame must be Login")
                continue
            if session.api_key not in keys:  # revoked since the login
                self.logout(Reject.GATEWAY_UNAUTHORIZED, "the API key was revoked")
                return
            if kind is NewOrder:
                (_, request_id, symbol, side, type_, qty, price, tif, quote_qty, stop_price,
                 expire_ts, post_only, visible_qty, stp, client_order_id, account) = values
                account = self._acting(session, account, request_id, symbol)
                if account is None:
                    continue
                self._request(session, request_id, symbol, 1, requests, cmd.PlaceOrder(
                    account, symbol, side, type_, qty, price, tif, quote_qty, stop_price,
                    expire_ts, post_only, visible_qty, stp, client_order_id,
                ))
            elif kind is Cancel:
                _, request_id, symbol, order_id, client_order_id, account = values
                account = self._acting(session, account, request_id, symbol)
                if account is None:
                    continue
                self._request(session, request_id, symbol, 0, requests, cmd.CancelOrder(
                    account, symbol, order_id, client_order_id
                ))
            elif kind is Amend:
                _, request_id, symbol, order_id, client_order_id, qty, price, account = values
                account = self._acting(session, account, request_id, symbol)
                if account is None:
                    continue
                self._request(session, request_id, symbol, 1, requests, cmd.AmendOrder(
                    account, symbol, order_id, client_order_id, qty, price,
                ))
            elif kind is CancelAll:
                _, request_id, symbol, account = values
                account = self._acting(session, account, request_id, symbol)
                if account is None:
                    continue
                self._request(session, request_id, symbol, 0, requests,
                              cmd.CancelAllOrders(account, symbol))
            elif kind is ResendRequest:
                self._resend(session, values[1], values[2])
            elif kind is Logout:
                self.closing = True
                if self.transport is not None:
                    self.transport.close()
            elif kind is Login:
                self.logout(ProtocolErrorCode.UNKNOWN_TYPE, "already logged in")

    def _login(self, login: Login) -> None:
        server = self.server
        checked = server.policy.check(login, server.clock())
        if isinstance(checked, tuple):
            code, text = checked
            self.queue(encode(LoginRejected(int(code), text)))
            self.flush()
            self.closing = True
            if self.transport is not None:
                self.transport.close()
            return
        session = server.registry.open(checked, login.session_id)
        previous = session.outbox
        if previous is not None and previous is not self:
            previous.close_session(0, "session resumed on another connection")
        session.outbox = self
        self.session = session
        heartbeat_ms = login.heartbeat_ms or 1000
        heartbeat_ms = min(max(heartbeat_ms, MIN_HEARTBEAT_MS), MAX_HEARTBEAT_MS)
        self.heartbeat = heartbeat_ms / 1000
        self.queue(encode(LoginAccepted(
            session.session_id, session.account, session.next_seq, heartbeat_ms,
            min(login.revision, REVISION) or REVISION,
        )))

    def _acting(
        self, session: Session, account: Any, request_id: int, symbol: str
    ) -> AccountId | None:
        """The account a request acts for: the session's own (named or 0), another one only
        for a privileged session; None when the request was refused as forbidden."""
        if not account or account == session.account:
            return session.account
        if session.privileged:
            return account  # type: ignore[no-any-return]  # the decoded field, an int
        self._reject(session, request_id, symbol, Reject.GATEWAY_FORBIDDEN,
                     "only gateway sessions may name another account")
        return None

    def _request(
        self, session: Session, request_id: int, symbol: str, orders: int,
        requests: list[_Request], command: _Command,
    ) -> None:
        """Charge the request to the session's key; queue its command, or refuse it now."""
        limits = self.server.limits
        if limits is not None and command.account == session.account:
            limited = limits.spend_key(session.api_key, ORDER_ENTRY_WEIGHT, orders)
            if limited is not None:
                self._refuse(session, request_id, command, limited.code, limited.message)
                return
        requests.append((command, request_id))

    def _submit_all(self, session: Session, requests: list[_Request]) -> None:
        """Submit a read's commands: behind one future when the bus takes a list (`submit_many`;
        the reports, not the future, answer them), else one by one."""
        server = self.server
        submit_many = server.submit_many
        if submit_many is not None:
            try:
                submit_many([command for command, _ in requests])
            except Throttled:
                pass  # not room for all: as many as fit, one by one
            except SequencerError as exc:
                server.router.forget_failed()
                for command, request_id in requests:
                    self._refuse(session, request_id, command, Reject.GATEWAY_UNAVAILABLE,
                                 str(exc))
                return
            else:
                track = server.router.track
                for command, request_id in requests:
                    track(command, session, request_id)
                return
        for command, request_id in requests:
            try:
                future = server.bus.submit(command)
            except Throttled as exc:
                self._refuse(session, request_id, command, Reject.GATEWAY_THROTTLED, str(exc))
            except SequencerError as exc:
                server.router.forget_failed()
                self._refuse(session, request_id, command, Reject.GATEWAY_UNAVAILABLE, str(exc))
            else:
                server.router.track(command, session, request_id, future)

    def _refuse(
        self, session: Session, request_id: int, command: _Command, code: Reject, text: str
    ) -> None:
        # the refusal names the order the request named, so clients can match it
        cid, order_id = "", 0
        if isinstance(command, cmd.CancelOrder | cmd.AmendOrder):
            cid, order_id = command.client_order_id, command.order_id
        elif isinstance(command, cmd.PlaceOrder):
            cid = command.client_order_id
        self._reject(session, request_id, command.symbol, code, text, cid, order_id)

    def _reject(
        self, session: Session, request_id: int, symbol: str, code: Reject, text: str,
        client_order_id: str = "", order_id: int = 0,
    ) -> None:
        report = RejectedReport(
            0, 0, Nanos(self.server.clock()), session.account, OrderId(order_id),
            int(code), symbol, client_order_id, text,
        )
        session.deliver(encode(report), request_id)

    def _resend(self, session: Session, from_seq: int, to_seq: int) -> None:
        from_seq = max(from_seq, 1)
        last = session.last_seq if to_seq == 0 else min(to_seq, session.last_seq)
        frames = session.resend(from_seq, last)
        if frames is None:
            gone = session.oldest_seq() - 1
            self.queue(encode(ResendDone(from_seq, gone, False)))
            return
        for frame in frames:
            self.queue(frame)
        self.queue(encode(ResendDone(from_seq, max(last, from_seq - 1), True)))
