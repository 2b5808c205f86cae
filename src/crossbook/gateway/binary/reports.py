"""Execution reports: durable batches turned into per-session binary reports (a `Sink`).

Contract:
- The server `track`s every command it submits with the session and request id behind it
  (and the command's future, if it has one of its own).
  `on_batch` (called by the sequencer only after the batch is durable, in seq order) turns
  each command's events into reports and delivers them, in event order, to every session
  of the account an event concerns; the session that sent the request gets its
  `request_id` on every report the command caused, other sessions get 0. A privileged
  session (a gateway worker naming the account in its request) also gets the reports its
  own request caused for that account.
- Mapping: `OrderAccepted` → `AcceptedReport`; `OrderRejected` → `RejectedReport`;
  `TradeExecuted` → one `FillReport` for the maker and one for the taker; `OrderCanceled`
  → `CanceledReport`; `OrderExpired` → `ExpiredReport`; `OrderAmended` → `AmendedReport`;
  `OrderTriggered` → `TriggeredReport`; a `CancelAllOrders` that was not rejected ends with
  a `CancelAllReport` counting its cancels. Balance, depth and admin events make no report.
- Each report is encoded once, straight from the event's fields (`protocol.binary.packer`:
  no message object). For an account with one session (`SessionRegistry.sole`, the common
  case) it is encoded with that session's next seq and request id and kept as it is
  (`Session.deliver_stamped`); otherwise with seq and request id 0, and `Session.deliver`
  stamps each session's copy.
  A report no session would receive (an account with no binary session, the common case
  for REST and WebSocket traffic) is not encoded at all.
- `origins` (when `record_origins`) lists, for the last batch, `(index, session_id,
  request_id)` of the commands that came from binary sessions (the worker feed uses it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Final

from crossbook.domain import commands as cmd
from crossbook.domain import events as ev
from crossbook.domain.enums import CloseReason, Liquidity, Side
from crossbook.domain.values import AccountId, OrderId
from crossbook.gateway.binary.sessions import Session, SessionRegistry
from crossbook.protocol.binary import packer
from crossbook.protocol.binary_messages import (
    AcceptedReport,
    AmendedReport,
    CancelAllReport,
    CanceledReport,
    ExpiredReport,
    FillReport,
    RejectedReport,
    TriggeredReport,
)
from crossbook.sequencer.ports import Applied

_Origin = tuple[cmd.Command, Session, int, "asyncio.Future[Applied] | None"]
_ZERO: Final = OrderId(0)
_BUY: Final = Side.BUY
_SELL: Final = Side.SELL
_MAKER: Final = Liquidity.MAKER
_TAKER: Final = Liquidity.TAKER
_CANCEL_ALL_REASON: Final = CloseReason.CANCEL_ALL
"""Enum members as module constants: reading `Side.SELL` from its class goes through the
enum metaclass's `__getattr__` hook on CPython 3.11 (about 40 times a global load)."""
_ACCEPTED: Final = packer(AcceptedReport)
_CANCELED: Final = packer(CanceledReport)
_REJECTED: Final = packer(RejectedReport)
_EXPIRED: Final = packer(ExpiredReport)
_AMENDED: Final = packer(AmendedReport)
_TRIGGERED: Final = packer(TriggeredReport)
_CANCEL_ALL: Final = packer(CancelAllReport)
_FILL: Final = packer(FillReport)
_REPORTED: Final[frozenset[type]] = frozenset({
    ev.TradeExecuted, ev.OrderAccepted, ev.OrderCanceled, ev.OrderRejected, ev.OrderExpired,
    ev.OrderAmended, ev.OrderTriggered,
})
"""The events that make reports; the others (balances, depth: most of them) are skipped
first thing."""
_NO_SESSIONS: Final[Mapping[int, Session]] = {}
_TRADE: Final = ev.TradeExecuted
_ACCEPTED_EVENT: Final = ev.OrderAccepted
_CANCELED_EVENT: Final = ev.OrderCanceled


class ReportRouter:
    def __init__(self, registry: SessionRegistry, *, record_origins: bool = False) -> None:
        self.registry = registry
        self.pending: dict[int, _Origin] = {}
        self.record_origins = record_origins
        self.origins: list[tuple[int, int, int]] = []

    def track(
        self, command: cmd.Command, session: Session, request_id: int,
        future: asyncio.Future[Applied] | None = None,
    ) -> None:
        """Report `command`'s events to `session` under `request_id`; `future` is the command's
        own from `submit`, None when it went in with others (`submit_many`)."""
        self.pending[id(command)] = (command, session, request_id, future)

    def forget_failed(self) -> None:
        """After the sequencer stopped: retrieve the failed futures' exceptions, drop all."""
        for _, _, _, future in self.pending.values():
            if future is not None and future.done() and not future.cancelled():
                future.exception()
        self.pending.clear()

    def on_batch(self, batch: Sequence[Applied]) -> None:
        pending, origins = self.pending, self.origins
        if self.record_origins:
            origins.clear()
        by_account = self.registry.by_account
        for index, applied in enumerate(batch):
            command = applied.command
            origin = pending.pop(id(command), None) if pending else None
            if origin is not None and origin[0] is command:
                session, request_id = origin[1], origin[2]
                if self.record_origins:
                    origins.append((index, session.session_id, request_id))
            else:
                session, request_id = None, 0
                if not by_account:
                    continue  # no binary session at all: nobody to report to
            if applied.events:
                self._reports(applied, session, request_id)

    def _reports(self, applied: Applied, origin: Session | None, request_id: int) -> None:
        ts, command = applied.ts, applied.command
        target = getattr(command, "account", -1)
        route = self._route
        by_account = self.registry.by_account
        relay = origin is not None and origin.privileged  # may take reports for others
        # An account's only session gets its report encoded with its own seq and request id
        # (no copy to stamp); several sessions, or a relay, take the general `_route`.
        sole = _NO_SESSIONS if relay else self.registry.sole
        rejected, canceled = False, 0
        for event in applied.events:
            kind = event.__class__
            if kind not in _REPORTED:
                continue
            if kind is _TRADE:
                assert isinstance(event, ev.TradeExecuted)
                self._fills(event, ts, origin, request_id, target, sole, relay, by_account)
                continue
            account: int = getattr(event, "account", -1)
            if not relay and account not in by_account:
                continue  # nobody to tell (what is skipped only feeds this account's reports)
            one = sole.get(account)
            if one is None:
                seq = rid = 0
            else:
                seq, rid = one.next_seq, request_id if one is origin else 0
            if kind is _ACCEPTED_EVENT:
                assert isinstance(event, ev.OrderAccepted)
                frame = _ACCEPTED(
                    seq, rid, ts, event.account, event.order_id, event.symbol, event.side,
                    event.type, event.qty, event.price, event.tif, event.quote_qty,
                    event.stop_price, event.expire_ts, event.post_only, event.visible_qty,
                    event.stp, event.working, event.client_order_id,
                )
            elif kind is _CANCELED_EVENT:
                assert isinstance(event, ev.OrderCanceled)
                if event.reason is _CANCEL_ALL_REASON:
                    canceled += 1
                frame = _CANCELED(
                    seq, rid, ts, event.account, event.order_id, event.symbol, event.reason,
                    event.status, event.filled, event.client_order_id,
                )
            elif kind is ev.OrderRejected:
                assert isinstance(event, ev.OrderRejected)
                rejected = True
                frame = _REJECTED(
                    seq, rid, ts, event.account, event.order_id, int(event.code), event.symbol,
                    event.client_order_id, event.message,
                )
            elif kind is ev.OrderExpired:
                assert isinstance(event, ev.OrderExpired)
                frame = _EXPIRED(
                    seq, rid, ts, event.account, event.order_id, event.symbol, event.reason,
                    event.status, event.filled, event.client_order_id,
                )
            elif kind is ev.OrderAmended:
                assert isinstance(event, ev.OrderAmended)
                frame = _AMENDED(
                    seq, rid, ts, event.account, event.order_id, event.symbol, event.qty,
                    event.price, event.filled, event.kept_priority, event.client_order_id,
                )
            else:
                assert isinstance(event, ev.OrderTriggered)
                frame = _TRIGGERED(
                    seq, rid, ts, event.account, event.order_id, event.symbol, event.last_price,
                    event.client_order_id,
                )
            if one is not None:
                one.deliver_stamped(frame)
            else:
                route(event.account, frame, origin, request_id, target)
        if type(command) is cmd.CancelAllOrders and not rejected and (
            relay or command.account in by_account
        ):
            route(command.account, _CANCEL_ALL(
                0, 0, ts, command.account, command.symbol, canceled,
            ), origin, request_id, target)

    def _fills(
        self, t: ev.TradeExecuted, ts: int, origin: Session | None, request_id: int, target: int,
        sole: Mapping[int, Session], relay: bool, by_account: Mapping[int, list[Session]],
    ) -> None:
        account = t.maker_account
        if relay or account in by_account:
            maker_side = _SELL if t.taker_side is _BUY else _BUY
            one = sole.get(account)
            if one is None:
                seq = rid = 0
            else:
                seq, rid = one.next_seq, request_id if one is origin else 0
            frame = _FILL(
                seq, rid, ts, account, t.maker_order_id, t.trade_id, t.symbol, maker_side,
                _MAKER, t.maker_status, t.price, t.qty, t.quote_qty, t.maker_fee,
                t.maker_filled, t.maker_client_order_id,
            )
            if one is not None:
                one.deliver_stamped(frame)
            else:
                self._route(account, frame, origin, request_id, target)
        account = t.taker_account
        if relay or account in by_account:
            one = sole.get(account)
            if one is None:
                seq = rid = 0
            else:
                seq, rid = one.next_seq, request_id if one is origin else 0
            frame = _FILL(
                seq, rid, ts, account, t.taker_order_id, t.trade_id, t.symbol, t.taker_side,
                _TAKER, t.taker_status, t.price, t.qty, t.quote_qty, t.taker_fee,
                t.taker_filled, t.taker_client_order_id,
            )
            if one is not None:
                one.deliver_stamped(frame)
            else:
                self._route(account, frame, origin, request_id, target)

    def _route(
        self, account: AccountId, template: bytes, origin: Session | None, request_id: int,
        target: int,
    ) -> None:
        sessions = self.registry.by_account.get(account)
        if sessions:
            for session in sessions:
                session.deliver(template, request_id if session is origin else 0)
        if (
            origin is not None and origin.privileged and account == target
            and origin.account != account
        ):
            origin.deliver(template, request_id)
