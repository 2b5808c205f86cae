"""User data events: each durable order change and balance change, to its account's topics.

Fed by the publisher with every durable batch (so nothing leaves before the journal sync),
after `GatewayViews` has folded the same batch. Per account with a subscriber:

- Binance topic `user@<account>` (listen-key connections `/ws/<listenKey>`): one
  `executionReport` per order event (`x` = NEW, TRADE, CANCELED, EXPIRED, REPLACED) and, after
  the batch, one `outboundAccountPosition` with each asset the batch changed (`B`).
- native topic `user:<account>` (`/v1/ws` after login): `OrderEvent` and `BalanceEvent`.

The accounts with a topic are found once per batch; an event of any other account is
skipped before anything is looked up or formatted, and each dialect's message is built only
for an account with that dialect's topic.

`Z` (cumulative quote) is summed from the trades this process has seen: an order resting
across a restart restarts that sum at 0 (its `z` filled quantity stays exact).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from crossbook.domain import events as ev
from crossbook.domain.enums import OrderStatus, Side, TimeInForce
from crossbook.gateway.views import GatewayViews, OrderRecord
from crossbook.gateway.ws.fanout import Hub, Topic
from crossbook.protocol import native as native_wire
from crossbook.protocol import ws as wire
from crossbook.protocol.decimals import scale_for_precision
from crossbook.sequencer.ports import Applied

_encode = msgspec.json.Encoder().encode
_TYPES = {1: "LIMIT", 2: "MARKET", 3: "STOP_LOSS", 4: "STOP_LOSS_LIMIT", 5: "TAKE_PROFIT",
          6: "TAKE_PROFIT_LIMIT"}
_STATUS = {s: "EXPIRED" if s is OrderStatus.EXPIRED_IN_MATCH else s.name for s in OrderStatus}
# Read per event: tables and a module constant instead of `.name`, `.is_open` and
# `OrderStatus.NEW` (enum attribute reads go through Python-level hooks on CPython 3.11).
_SIDE_NAMES = {s: s.name for s in Side}
_TIF_NAMES = {t: t.name for t in TimeInForce}
_OPEN = frozenset(s for s in OrderStatus if s.is_open)
_NEW = OrderStatus.NEW


_NS_PER_MS = 1_000_000
_ORDER_EVENTS = frozenset((ev.OrderAccepted, ev.OrderCanceled, ev.OrderExpired, ev.OrderAmended,
                           ev.OrderTriggered))


class UserEvents:
    def __init__(self, hub: Hub, views: GatewayViews) -> None:
        self.hub = hub
        self.views = views
        self._later: dict[int, int] = {}
        """Per order: quote it trades in the current batch after the event being reported."""
        self._watch: dict[int, tuple[Topic | None, Topic | None]] = {}
        """Per account with a user topic (this batch): its Binance and native topics."""

    def on_batch(self, batch: Sequence[Applied]) -> None:
        watch = self._watch = self._watched()
        if not watch:
            return  # nobody listens: the views keep what a later subscriber needs
        self._start(batch)
        for applied in batch:
            changed: dict[int, dict[str, None]] = {}
            for event in applied.events:
                kind = type(event)
                if kind is ev.BalanceChanged:
                    assert isinstance(event, ev.BalanceChanged)
                    if event.account in watch:
                        changed.setdefault(event.account, {})[event.asset] = None
                elif kind is ev.TradeExecuted:
                    assert isinstance(event, ev.TradeExecuted)
                    self._track(event)
                    self._trade(event, applied.ts)
                elif kind in _ORDER_EVENTS:
                    self._order_event(event, applied.ts)  # type: ignore[arg-type]
            for account, assets in changed.items():
                self._balances(account, list(assets), applied.ts)

    def _watched(self) -> dict[int, tuple[Topic | None, Topic | None]]:
        """Accounts with a `user@<account>` or `user:<account>` topic, one scan per batch."""
        found: dict[int, tuple[Topic | None, Topic | None]] = {}
        for name, topic in self.hub.topics.items():
            if name.startswith(("user@", "user:")) and name[5:].isdigit():
                account = int(name[5:])
                binance, native = found.get(account, (None, None))
                found[account] = (topic, native) if name[4] == "@" else (binance, topic)
        return found

    def _start(self, batch: Sequence[Applied]) -> None:
        # The views have folded the whole batch, so an order's `quote_filled` is its total
        # after the batch; an event's `Z` is that total less what the order trades later on.
        later: dict[int, int] = {}
        for applied in batch:
            for event in applied.events:
                if type(event) is ev.TradeExecuted:
                    assert isinstance(event, ev.TradeExecuted)
                    for order_id in (event.maker_order_id, event.taker_order_id):
                        later[order_id] = later.get(order_id, 0) + event.quote_qty
        self._later = later

    def _track(self, trade: ev.TradeExecuted) -> None:
        for order_id in (trade.maker_order_id, trade.taker_order_id):
            self._later[order_id] -= trade.quote_qty

    def _cumulative_quote(self, order: OrderRecord) -> int:
        return order.quote_filled - self._later.get(order.order_id, 0)

    def _trade(self, event: ev.TradeExecuted, ts: int) -> None:
        watch, order_of = self._watch, self.views.order
        if event.maker_account in watch:
            order = order_of(event.maker_order_id)
            if order is not None:
                self._order(order, "TRADE", "trade", event.maker_status, event.maker_filled,
                            ts, event, True, event.maker_fee)
        if event.taker_account in watch:
            order = order_of(event.taker_order_id)
            if order is not None:
                self._order(order, "TRADE", "trade", event.taker_status, event.taker_filled,
                            ts, event, False, event.taker_fee)

    def _order_event(self, event: ev.OrderAccepted | ev.OrderCanceled | ev.OrderExpired
                     | ev.OrderAmended | ev.OrderTriggered, ts: int) -> None:
        if event.account not in self._watch:
            return
        order = self.views.order(event.order_id)
        if order is None:
            return
        kind = type(event)
        if kind is ev.OrderAccepted:
            self._order(order, "NEW", "accepted", _NEW, 0, ts)
        elif kind is ev.OrderCanceled:
            assert isinstance(event, ev.OrderCanceled)
            self._order(order, "CANCELED", "canceled", event.status, event.filled, ts)
        elif kind is ev.OrderExpired:
            assert isinstance(event, ev.OrderExpired)
            self._order(order, "EXPIRED", "expired", event.status, event.filled, ts)
        elif kind is ev.OrderAmended:
            assert isinstance(event, ev.OrderAmended)
            self._order(order, "REPLACED", "amended", order.status, event.filled, ts)
        else:
            self._order(order, "NEW", "triggered", order.status, order.filled, ts)

    def _order(self, o: OrderRecord, execution: str, native_event: str, status: OrderStatus,
               filled: int, ts: int, trade: ev.TradeExecuted | None = None,
               maker: bool = False, fee: int = 0) -> None:
        binance_topic, native_topic = self._watch.get(o.account, (None, None))
        hub = self.hub
        record = self.views.instruments[o.symbol]
        inst, scales = record.instrument, record.scales
        price, qty, quote = scales.price.format, scales.quantity.format, scales.quote.format
        time = ts // _NS_PER_MS
        if binance_topic is not None:  # each dialect is built only when someone reads it
            hub.publish(binance_topic, _encode({
                "e": "executionReport", "E": time, "s": inst.base + inst.quote,
                "c": o.client_order_id, "S": _SIDE_NAMES[o.side], "o": _TYPES[o.type],
                "f": _TIF_NAMES[o.tif], "q": qty(o.qty), "p": price(o.price),
                "P": price(o.stop_price), "F": qty(o.visible_qty), "g": -1, "C": "",
                "x": execution, "X": _STATUS[status], "r": "NONE", "i": o.order_id,
                "l": qty(trade.qty) if trade else qty(0), "z": qty(filled),
                "L": price(trade.price) if trade else price(0), "n": quote(fee),
                "N": inst.quote if trade else None, "T": time,
                "t": trade.trade_id if trade else -1, "I": 0, "w": status in _OPEN,
                "m": maker, "M": False, "O": o.created_ts // _NS_PER_MS,
                "Z": quote(self._cumulative_quote(o)),
                "Y": quote(trade.quote_qty) if trade else quote(0), "Q": quote(o.quote_qty),
                "W": o.created_ts // _NS_PER_MS, "V": native_wire.STP_NAMES[o.stp].upper(),
            }))
        if native_topic is not None:
            hub.publish(native_topic, _encode(wire.OrderEvent(
                "orders", native_event,  # type: ignore[arg-type]
                o.order_id, o.client_order_id, o.symbol, native_wire.STATUS_NAMES[status],
                qty(filled), time,
                trade_id=trade.trade_id if trade else None,
                price=price(trade.price) if trade else (price(o.price) if o.price else None),
                quantity=qty(trade.qty) if trade else (qty(o.qty) if o.qty else None),
                fee=quote(fee) if trade else None,
                liquidity=("maker" if maker else "taker") if trade else None,
            )))

    def _balances(self, account: int, assets: list[str], ts: int) -> None:
        record = self.views.accounts.get(account)
        if record is None:
            return
        rows = []
        for code in assets:
            free, locked = record.balances.get(code, (0, 0))
            scale = scale_for_precision(self.views.assets[code].precision)
            rows.append((code, scale.format(free), scale.format(locked)))
        time = ts // _NS_PER_MS
        binance_topic, native_topic = self._watch[account]
        if binance_topic is not None:
            self.hub.publish(binance_topic, _encode(
                {"e": "outboundAccountPosition", "E": time, "u": time,
                 "B": [{"a": a, "f": f, "l": lk} for a, f, lk in rows]}))
        if native_topic is not None:
            self.hub.publish(native_topic, _encode(wire.BalanceEvent("balances", time, rows)))
