"""Durable read models for the gateway, fed by the sequencer's batches (a `Sink`).

Contract:
- Everything here reflects exactly the durable state: batches arrive only after their fsync,
  so a GET never shows an order, fill, balance or key that a crash could still take back.
  (The engine itself runs up to one batch ahead of durability and is never read here.)
- A node seeds the views once at start, from the state recovery produced, with the `seed_*`
  methods; from then on `on_batch` folds every durable batch in sequence order.
- Orders: every open order, plus the most recent `closed_keep` closed ones (older closed
  orders come from the history database). Fills: the newest `fills_keep` per account,
  kept as the durable trades themselves; `fills` builds their records when it is read.
- Instruments carry their `InstrumentScales` for decimal conversion at the edge.
- API keys keep their secret, taken from the journaled `CreateApiKey` command (events never
  carry secrets). A revoked key is gone at once.

Costs: O(events) per batch with dict updates only; queries are dict lookups or scans of one
account's open orders. Order and fill records are msgspec structs: one costs about a tenth of
a frozen dataclass to build. They hold scalars only, so the garbage collector does not track
them (a node keeps ~100,000 of them). The order path builds one record per accepted order;
a trade only updates records and is kept for its two fills.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from crossbook.domain import commands as cmd
from crossbook.domain import events as ev
from crossbook.domain.enums import (
    MARKET_TYPES,
    OrderStatus,
    OrderType,
    Permission,
    Side,
    StpMode,
    TimeInForce,
)
from crossbook.domain.events import BalanceChanged
from crossbook.domain.instruments import Asset, Instrument
from crossbook.protocol.decimals import InstrumentScales
from crossbook.sequencer.ports import Applied


@dataclass(slots=True)
class KeyRecord:
    key: str
    secret: bytes
    account: int
    permissions: Permission
    label: str = ""


@dataclass(slots=True)
class InstrumentRecord:
    instrument: Instrument
    scales: InstrumentScales
    halted: bool = False


class OrderRecord(msgspec.Struct, gc=False):
    order_id: int
    account: int
    symbol: str
    side: Side
    type: OrderType
    tif: TimeInForce
    qty: int
    price: int
    quote_qty: int
    stop_price: int
    expire_ts: int
    post_only: bool
    visible_qty: int
    stp: StpMode
    client_order_id: str
    filled: int = 0
    status: OrderStatus = OrderStatus.NEW
    working: bool = True
    created_ts: int = 0
    updated_ts: int = 0
    quote_filled: int = 0
    """Quote units traded so far (Binance `cummulativeQuoteQty`); counted from durable
    trades, so an order seeded at recovery starts from 0."""


class FillRecord(msgspec.Struct, frozen=True, gc=False):
    trade_id: int
    symbol: str
    order_id: int
    client_order_id: str
    side: Side
    price: int
    qty: int
    quote_qty: int
    fee: int
    maker: bool
    ts: int


_KeptFill = tuple[ev.TradeExecuted, int, bool]


def _fill(t: ev.TradeExecuted, ts: int, maker: bool) -> FillRecord:
    """One side's fill record of a trade."""
    if maker:
        return FillRecord(
            t.trade_id, t.symbol, t.maker_order_id, t.maker_client_order_id,
            _SELL if t.taker_side is _BUY else _BUY, t.price, t.qty, t.quote_qty,
            t.maker_fee, True, ts,
        )
    return FillRecord(
        t.trade_id, t.symbol, t.taker_order_id, t.taker_client_order_id, t.taker_side,
        t.price, t.qty, t.quote_qty, t.taker_fee, False, ts,
    )


@dataclass(slots=True)
class AccountRecord:
    account: int
    maker_fee_bps: int
    taker_fee_bps: int
    balances: dict[str, tuple[int, int]] = field(default_factory=dict)
    open_orders: dict[int, OrderRecord] = field(default_factory=dict)
    fills: deque[_KeptFill] = field(default_factory=deque)
    """The newest fills as `(trade, ts, maker)`; `GatewayViews.fills` gives their records."""


class GatewayViews:
    def __init__(self, *, closed_keep: int = 100_000, fills_keep: int = 1_000) -> None:
        self.assets: dict[str, Asset] = {}
        self.instruments: dict[str, InstrumentRecord] = {}
        self.accounts: dict[int, AccountRecord] = {}
        self.keys: dict[str, KeyRecord] = {}
        self.orders: dict[int, OrderRecord] = {}
        self.client_ids: dict[tuple[int, str], int] = {}
        self.closed: OrderedDict[int, OrderRecord] = OrderedDict()
        self.last_seq = 0
        self.last_ts = 0
        self._closed_keep = closed_keep
        self._fills_keep = fills_keep
        self._market: list[OrderRecord] = []
        """Market orders accepted or triggered by the command being folded."""

    # -- seeding from recovered state ------------------------------------------------------

    def seed_asset(self, asset: Asset) -> None:
        self.assets[asset.code] = asset

    def seed_instrument(self, instrument: Instrument, halted: bool) -> None:
        self.instruments[instrument.symbol] = InstrumentRecord(
            instrument, InstrumentScales.of(instrument), halted
        )

    def seed_account(
        self, account: int, fees: tuple[int, int], balances: dict[str, tuple[int, int]]
    ) -> None:
        self.accounts[account] = AccountRecord(account, fees[0], fees[1], dict(balances))

    def seed_key(self, key: str, secret: str, account: int, permissions: int, label: str) -> None:
        self.keys[key] = KeyRecord(key, secret.encode(), account, Permission(permissions), label)

    def seed_order(self, order: OrderRecord) -> None:
        self._open(order)

    def seed_position(self, seq: int, ts: int) -> None:
        self.last_seq, self.last_ts = seq, ts

    # -- queries -----------------------------------------------------------------------------

    def order(self, order_id: int) -> OrderRecord | None:
        found = self.orders.get(order_id)
        return found if found is not None else self.closed.get(order_id)

    def order_by_client_id(self, account: int, client_order_id: str) -> OrderRecord | None:
        order_id = self.client_ids.get((account, client_order_id))
        if order_id is not None:
            return self.orders.get(order_id)
        for order in reversed(self.closed.values()):
            if order.account == account and order.client_order_id == client_order_id:
                return order
        return None

    def open_orders(self, account: int, symbol: str | None = None) -> list[OrderRecord]:
        record = self.accounts.get(account)
        if record is None:
            return []
        return [o for o in record.open_orders.values() if symbol is None or o.symbol == symbol]

    def closed_orders(self, account: int, symbol: str | None = None) -> list[OrderRecord]:
        return [
            o for o in self.closed.values()
            if o.account == account and (symbol is None or o.symbol == symbol)
        ]

    def fills(self, account: int) -> Iterable[FillRecord]:
        """The account's newest fills, oldest first."""
        record = self.accounts.get(account)
        return () if record is None else [_fill(*kept) for kept in record.fills]

    # -- folding durable batches -------------------------------------------------------------

    def on_batch(self, batch: Sequence[Applied]) -> None:
        handlers, accounts = _HANDLERS, self.accounts
        market = self._market
        for applied in batch:
            ts = applied.ts
            for event in applied.events:
                # Balance changes are half of all events: handled inline, no call.
                if type(event) is BalanceChanged:
                    account = accounts.get(event.account)
                    if account is not None:
                        account.balances[event.asset] = (event.free, event.locked)
                    continue
                handler = handlers.get(type(event))
                if handler is not None:  # depth, trading-only events: nothing to keep here
                    handler(self, event, ts, applied.command, market)
            if market:
                self._close_market(market, ts)
        if batch:
            last = batch[-1]
            self.last_seq, self.last_ts = last.seq, last.ts

    def apply(self, applied: Applied) -> None:
        self.on_batch((applied,))

    def _close_market(self, market: list[OrderRecord], ts: int) -> None:
        # A market order never rests: one that is still open here was finished silently
        # (a quote budget spent), so close it as filled.
        for order in market:
            if order.status <= _LAST_OPEN and order.order_id in self.orders:
                status = _FILLED if order.filled else _EXPIRED
                self._update(order.order_id, order.filled, status, ts)
        market.clear()

    # One handler per event type, looked up by exact type (events are final structs): a
    # table is cheaper than a chain of isinstance checks for the events that are skipped.

    def _on_balance(self, e: ev.BalanceChanged, ts: int, c: object, m: list[OrderRecord]) -> None:
        account = self.accounts.get(e.account)
        if account is not None:
            account.balances[e.asset] = (e.free, e.locked)

    def _on_accepted(self, e: ev.OrderAccepted, ts: int, c: object, m: list[OrderRecord]) -> None:
        order = OrderRecord(
            e.order_id, e.account, e.symbol, e.side, e.type, e.tif, e.qty, e.price, e.quote_qty,
            e.stop_price, e.expire_ts, e.post_only, e.visible_qty, e.stp, e.client_order_id,
            0, _NEW, e.working, ts, ts,
        )
        self._open(order)
        if e.working and e.type in MARKET_TYPES:
            m.append(order)

    def _on_closed(
        self, e: ev.OrderCanceled | ev.OrderExpired, ts: int, c: object, m: list[OrderRecord]
    ) -> None:
        self._update(e.order_id, e.filled, e.status, ts)

    def _on_amended(self, e: ev.OrderAmended, ts: int, c: object, m: list[OrderRecord]) -> None:
        found = self.orders.get(e.order_id)
        if found is not None:
            found.qty, found.price, found.updated_ts = e.qty, e.price, ts

    def _on_triggered(
        self, e: ev.OrderTriggered, ts: int, c: object, m: list[OrderRecord]
    ) -> None:
        found = self.orders.get(e.order_id)
        if found is not None:
            found.working, found.updated_ts = True, ts
            if found.type.is_market:
                m.append(found)

    def _on_admin(self, e: ev.Event, ts: int, c: cmd.Command, m: list[OrderRecord]) -> None:
        self._admin(e, c)

    def _open(self, order: OrderRecord) -> None:
        self.orders[order.order_id] = order
        account = self.accounts.get(order.account)
        if account is not None:
            account.open_orders[order.order_id] = order
        if order.client_order_id:
            self.client_ids[order.account, order.client_order_id] = order.order_id

    def _update(self, order_id: int, filled: int, status: OrderStatus, ts: int) -> None:
        order = self.orders.get(order_id)
        if order is None:
            return
        order.filled, order.status, order.updated_ts = filled, status, ts
        if status <= _LAST_OPEN:
            return
        del self.orders[order_id]
        account = self.accounts.get(order.account)
        if account is not None:
            account.open_orders.pop(order_id, None)
        if order.client_order_id:
            self.client_ids.pop((order.account, order.client_order_id), None)
        closed = self.closed
        closed[order_id] = order
        if len(closed) > self._closed_keep:
            closed.popitem(last=False)

    def _on_trade(self, t: ev.TradeExecuted, ts: int, c: object, m: list[OrderRecord]) -> None:
        orders, accounts, keep = self.orders, self.accounts, self._fills_keep
        maker_order = orders.get(t.maker_order_id)
        if maker_order is not None:
            maker_order.quote_filled += t.quote_qty
        taker_order = orders.get(t.taker_order_id)
        if taker_order is not None:
            taker_order.quote_filled += t.quote_qty
        # The trade is kept as it is; its fill records are built when a query reads them.
        account = accounts.get(t.maker_account)
        if account is not None:
            fills = account.fills
            fills.append((t, ts, True))
            if len(fills) > keep:
                fills.popleft()
        account = accounts.get(t.taker_account)
        if account is not None:
            fills = account.fills
            fills.append((t, ts, False))
            if len(fills) > keep:
                fills.popleft()
        self._update(t.maker_order_id, t.maker_filled, t.maker_status, ts)
        self._update(t.taker_order_id, t.taker_filled, t.taker_status, ts)

    def _admin(self, event: ev.Event, command: cmd.Command) -> None:
        if isinstance(event, ev.AccountCreated):
            self.accounts[event.account] = AccountRecord(
                event.account, event.maker_fee_bps, event.taker_fee_bps
            )
        elif isinstance(event, ev.FeesChanged):
            account = self.accounts.get(event.account)
            if account is not None:
                account.maker_fee_bps = event.maker_fee_bps
                account.taker_fee_bps = event.taker_fee_bps
        elif isinstance(event, ev.AssetAdded):
            self.seed_asset(event.asset)
        elif isinstance(event, ev.InstrumentAdded):
            self.seed_instrument(event.instrument, False)
        elif isinstance(event, ev.TradingHalted | ev.TradingResumed):
            record = self.instruments.get(event.symbol)
            if record is not None:
                record.halted = isinstance(event, ev.TradingHalted)
        elif isinstance(event, ev.ApiKeyCreated) and isinstance(command, cmd.CreateApiKey):
            self.seed_key(
                event.key, command.secret, event.account, event.permissions, event.label
            )
        elif isinstance(event, ev.ApiKeyRevoked):
            self.keys.pop(event.key, None)


_LAST_OPEN: Final = OrderStatus.PARTIALLY_FILLED
"""Statuses up to this one are open (`OrderStatus.is_open`, without the property call)."""
_NEW: Final = OrderStatus.NEW
_FILLED: Final = OrderStatus.FILLED
_EXPIRED: Final = OrderStatus.EXPIRED
_BUY: Final = Side.BUY
_SELL: Final = Side.SELL
"""Enum members as module constants: reading `Side.SELL` from its class goes through the
enum metaclass's `__getattr__` hook on CPython 3.11 (about 40 times a global load)."""

_Handler = Callable[[GatewayViews, Any, int, Any, list[OrderRecord]], None]
_HANDLERS: dict[type, _Handler] = {
    ev.BalanceChanged: GatewayViews._on_balance,
    ev.OrderAccepted: GatewayViews._on_accepted,
    ev.TradeExecuted: GatewayViews._on_trade,
    ev.OrderCanceled: GatewayViews._on_closed,
    ev.OrderExpired: GatewayViews._on_closed,
    ev.OrderAmended: GatewayViews._on_amended,
    ev.OrderTriggered: GatewayViews._on_triggered,
    **dict.fromkeys((
        ev.AccountCreated, ev.FeesChanged, ev.AssetAdded, ev.InstrumentAdded,
        ev.TradingHalted, ev.TradingResumed, ev.ApiKeyCreated, ev.ApiKeyRevoked,
    ), GatewayViews._on_admin),
}
