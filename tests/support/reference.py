"""A slow, obviously correct reference exchange, written from the engine's contract.

It answers `apply(seq, ts, command) -> list[Event]` like `crossbook.engine.Exchange`, but
keeps everything as plainly as possible: the open orders are one list, a book side is that
list filtered and re-sorted by (price, arrival) every time it is looked at, balances are a
dict, and every rule is a straight loop. Nothing here is shared with the engine's code; the
spec is the docstring of `crossbook.engine.exchange`, the rules of
`crossbook.engine.validation`, and the docstrings of the domain events.

What it implements (all of it compared event for event by the property tests):
limit orders GTC/IOC/FOK/GTD, post-only, icebergs, market orders by base size and by quote
amount, stop-loss and take-profit (market and limit) with cascades, self-trade prevention in
every mode, amend, cancel by id or client id, cancel all, GTD expiry (by command and lazily),
halts, accounts, fee changes, deposits and withdrawals, holds, fees and settlement.

Two choices the contract leaves to wording, made here as plain rules:
- a `BalanceChanged` is written for every (account, asset) whose balance moved during the
  command, in the order they first moved; a cancel-replace amend re-takes its hold, which
  counts as a move even when the amount is unchanged;
- a `DepthChanged` lists every price level where an order was added, removed, filled, shrunk
  or refilled during the command (with the level's values after it), and none when nothing
  on the book changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from crossbook.domain import commands as cmd
from crossbook.domain import events as ev
from crossbook.domain.enums import (
    CloseReason,
    OrderStatus,
    OrderType,
    Side,
    StpMode,
    TimeInForce,
)
from crossbook.domain.instruments import Asset, Instrument
from crossbook.domain.rejects import Reject

NO_FUNDS = "Account has insufficient balance for requested action."
LIMIT_PRICED = (OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)
STOP_LOSSES = (OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT)
MAX_AMOUNT = 2**62
CLIENT_ID = re.compile(r"[.A-Za-z0-9:/_-]{1,36}")

# why matching stopped before the taker ran out of size, price or liquidity
DONE, SELF_TRADE, BUDGET = "done", "self-trade", "budget"


@dataclass(eq=False)
class RefOrder:
    order_id: int
    account: int
    symbol: str
    side: Side
    type: OrderType
    qty: int
    price: int
    tif: TimeInForce
    quote_qty: int
    stop_price: int
    expire_ts: int
    post_only: bool
    visible_qty: int
    stp: StpMode
    client_order_id: str
    filled: int = 0
    shown: int = 0
    locked: int = 0
    hold_bps: int = 0
    quote_spent: int = 0
    status: OrderStatus = OrderStatus.NEW
    working: bool = True
    resting: bool = False
    arrival: int = 0

    @property
    def remaining(self) -> int:
        return self.qty - self.filled


def fee(notional: int, bps: int) -> int:
    """Fee on a notional, truncated toward zero; negative bps is a rebate."""
    magnitude = abs(notional * bps) // 10000
    return magnitude if bps >= 0 else -magnitude


def fee_rounded_up(notional: int, bps: int) -> int:
    """The fee a hold reserves: rounded up, and nothing for a zero or negative rate."""
    if bps <= 0:
        return 0
    return (notional * bps + 9999) // 10000


def rises_to_trigger(order: RefOrder) -> bool:
    """A buy stop-loss and a sell take-profit wait for the price to rise to their stop."""
    return (order.type in STOP_LOSSES) == (order.side is Side.BUY)


def is_triggered(order: RefOrder, last: int) -> bool:
    return last >= order.stop_price if rises_to_trigger(order) else last <= order.stop_price


def price_problem(inst: Instrument, price: int) -> tuple[Reject, str] | None:
    if price <= 0:
        return Reject.INVALID_PRICE, "price must be positive"
    if price < inst.min_price or price > inst.max_price:
        return Reject.PRICE_OUT_OF_BOUNDS, "price outside the instrument's bounds"
    return None


def qty_problem(inst: Instrument, qty: int) -> tuple[Reject, str] | None:
    if qty <= 0:
        return Reject.INVALID_QUANTITY, "quantity must be positive"
    if qty < inst.min_qty or qty > inst.max_qty:
        return Reject.QUANTITY_OUT_OF_BOUNDS, "quantity outside the instrument's bounds"
    return None


def order_problem(c: cmd.PlaceOrder, inst: Instrument, ts: int) -> tuple[Reject, str] | None:
    """The stateless rules of a new order, in the order they are checked."""
    if c.client_order_id and not CLIENT_ID.fullmatch(c.client_order_id):
        return Reject.INVALID_CLIENT_ORDER_ID, "client order id must be 1-36 of [.A-Za-z0-9:/_-]"
    limit_priced = c.type in LIMIT_PRICED
    if limit_priced:
        problem = price_problem(inst, c.price)
        if problem:
            return problem
    elif c.price != 0:
        return Reject.INVALID_ORDER_PARAMETERS, "market orders take no price"
    if c.type.is_stop:
        problem = price_problem(inst, c.stop_price)
        if problem:
            return problem[0], "stop price: " + problem[1]
    elif c.stop_price != 0:
        return Reject.INVALID_ORDER_PARAMETERS, "only stop and take-profit orders take a stop price"
    if c.quote_qty != 0:
        if not c.type.is_market or c.side is Side.SELL or c.qty != 0:
            return Reject.INVALID_ORDER_PARAMETERS, "quote quantity is for market buys only"
        if not 0 < c.quote_qty <= MAX_AMOUNT:
            return Reject.INVALID_QUANTITY, "quote quantity must be positive and below 2**62"
        if c.quote_qty < inst.min_notional:
            return Reject.BELOW_MIN_NOTIONAL, "quote quantity below the minimum notional"
        if c.tif is TimeInForce.FOK:
            return Reject.INVALID_ORDER_PARAMETERS, "FOK needs a base quantity"
    else:
        problem = qty_problem(inst, c.qty)
        if problem:
            return problem
        if limit_priced and c.price * c.qty * inst.notional_units < inst.min_notional:
            return Reject.BELOW_MIN_NOTIONAL, "notional below the instrument's minimum"
    if c.tif is TimeInForce.GTD:
        if not limit_priced:
            return Reject.INVALID_ORDER_PARAMETERS, "GTD is for limit orders"
        if c.expire_ts <= ts:
            return Reject.INVALID_EXPIRE_TIME, "expire time must be in the future"
    elif c.expire_ts != 0:
        return Reject.INVALID_ORDER_PARAMETERS, "an expire time needs time in force GTD"
    immediate = c.tif in (TimeInForce.IOC, TimeInForce.FOK)
    if c.post_only and (c.type is not OrderType.LIMIT or immediate):
        return Reject.INVALID_ORDER_PARAMETERS, "post-only is for GTC or GTD limit orders"
    if c.visible_qty != 0:
        if not limit_priced or immediate:
            return Reject.INVALID_ORDER_PARAMETERS, "iceberg is for GTC or GTD limit orders"
        if not 0 < c.visible_qty < c.qty or c.visible_qty < inst.min_qty:
            return Reject.INVALID_QUANTITY, "iceberg visible quantity must be below the total"
    return None


class ReferenceExchange:
    def __init__(self) -> None:
        self.assets: dict[str, Asset] = {}
        self.instruments: dict[str, Instrument] = {}
        self.halted: set[str] = set()
        self.fee_rates: dict[int, tuple[int, int]] = {}
        """account -> (maker bps, taker bps); the keys are the accounts that exist"""
        self.balances: dict[tuple[int, str], list[int]] = {}
        """(account, asset) -> [free, locked]"""
        self.open_orders: list[RefOrder] = []
        self.last_prices: dict[str, int] = {}
        self.update_ids: dict[str, int] = {}
        self.tx_ids: set[str] = set()
        self.fees_collected: dict[str, int] = {}
        self.next_order_id = 1
        self.next_trade_id = 1
        self.arrivals = 0
        self.events: list[ev.Event] = []
        self.moved: list[tuple[int, str]] = []
        self.changed_levels: list[tuple[str, Side, int]] = []

    # -- the entry point -------------------------------------------------------------------

    def apply(self, seq: int, ts: int, command: cmd.Command) -> list[ev.Event]:
        self.events, self.moved, self.changed_levels = [], [], []
        handler = getattr(self, "_" + type(command).__name__)
        handler(command, ts)
        for account, asset in self.moved:
            free, locked = self.balances[account, asset]
            self.events.append(ev.BalanceChanged(account, asset, free, locked))
        symbols = list(dict.fromkeys(symbol for symbol, _, _ in self.changed_levels))
        for symbol in symbols:
            self.update_ids[symbol] = self.update_ids.get(symbol, 0) + 1
            bids = sorted(
                {p for s, side, p in self.changed_levels if s == symbol and side is Side.BUY},
                reverse=True,
            )
            asks = sorted(
                {p for s, side, p in self.changed_levels if s == symbol and side is Side.SELL}
            )
            self.events.append(
                ev.DepthChanged(
                    symbol,
                    self.update_ids[symbol],
                    [self.level(symbol, Side.BUY, p) for p in bids],
                    [self.level(symbol, Side.SELL, p) for p in asks],
                )
            )
        return self.events

    # -- plain queries -----------------------------------------------------------------------

    def side_queue(self, symbol: str, side: Side) -> list[RefOrder]:
        """Resting orders of one side, best price first, then by arrival."""
        orders = [
            o for o in self.open_orders if o.symbol == symbol and o.side is side and o.resting
        ]
        if side is Side.BUY:
            return sorted(orders, key=lambda o: (-o.price, o.arrival))
        return sorted(orders, key=lambda o: (o.price, o.arrival))

    def level(self, symbol: str, side: Side, price: int) -> tuple[int, int, int]:
        orders = [o for o in self.side_queue(symbol, side) if o.price == price]
        return price, sum(o.shown for o in orders), len(orders)

    def find_open(self, order_id: int) -> RefOrder | None:
        for o in self.open_orders:
            if o.order_id == order_id:
                return o
        return None

    def find_by_client_id(self, account: int, client_order_id: str) -> RefOrder | None:
        for o in self.open_orders:
            if o.account == account and o.client_order_id == client_order_id:
                return o
        return None

    def crosses(self, symbol: str, side: Side, price: int) -> bool:
        for maker in self.side_queue(symbol, side.opposite):
            return maker.price <= price if side is Side.BUY else maker.price >= price
        return False

    def hold_asset(self, order: RefOrder) -> str:
        inst = self.instruments[order.symbol]
        return inst.quote if order.side is Side.BUY else inst.base

    # -- small state changes -----------------------------------------------------------------

    def move(
        self, account: int, asset: str, to_free: int, to_locked: int, always: bool = False
    ) -> None:
        if to_free == 0 and to_locked == 0 and not always:
            return
        balance = self.balances.setdefault((account, asset), [0, 0])
        balance[0] += to_free
        balance[1] += to_locked
        if (account, asset) not in self.moved:
            self.moved.append((account, asset))

    def level_changed(self, order: RefOrder) -> None:
        self.changed_levels.append((order.symbol, order.side, order.price))

    def rest(self, order: RefOrder) -> None:
        """Put an order at the back of its price level."""
        self.arrivals += 1
        order.arrival = self.arrivals
        order.resting = True
        visible = order.visible_qty
        order.shown = visible if 0 < visible < order.remaining else order.remaining
        self.level_changed(order)

    def unrest(self, order: RefOrder) -> None:
        if order.resting:
            order.resting = False
            self.level_changed(order)

    def reject(
        self,
        account: int,
        symbol: str,
        code: Reject,
        message: str,
        client_order_id: str = "",
        order_id: int = 0,
    ) -> None:
        self.events.append(
            ev.OrderRejected(account, symbol, client_order_id, code, message, order_id)
        )

    def hold_needed(self, order: RefOrder) -> int:
        """What an open order must still hold for its remaining size."""
        inst = self.instruments[order.symbol]
        if order.side is Side.SELL:
            return order.remaining * inst.lot_units
        if order.type in LIMIT_PRICED:
            notional = order.price * order.remaining * inst.notional_units
            return notional + fee_rounded_up(notional, order.hold_bps)
        return order.locked  # market buys spend their hold down and release it when done

    def release_excess(self, order: RefOrder) -> None:
        excess = order.locked - self.hold_needed(order)
        assert excess >= 0, f"order {order.order_id} holds less than it needs"
        order.locked -= excess
        self.move(order.account, self.hold_asset(order), excess, -excess)

    def finish(self, order: RefOrder) -> None:
        """Forget a closed order and release what it still holds."""
        self.move(order.account, self.hold_asset(order), order.locked, -order.locked)
        order.locked = 0
        self.open_orders.remove(order)

    def close(self, order: RefOrder, status: OrderStatus, reason: CloseReason) -> None:
        """End an open order before it filled: canceled or expired."""
        self.unrest(order)
        order.status = status
        self.finish(order)
        kind = ev.OrderCanceled if status is OrderStatus.CANCELED else ev.OrderExpired
        self.events.append(
            kind(
                order.order_id,
                order.account,
                order.symbol,
                order.client_order_id,
                reason,
                order.filled,
                status,
            )
        )

    def amended(self, order: RefOrder, kept_priority: bool) -> None:
        self.events.append(
            ev.OrderAmended(
                order.order_id,
                order.account,
                order.symbol,
                order.client_order_id,
                order.qty,
                order.price,
                order.filled,
                kept_priority,
            )
        )

    def expire_due(self, ts: int) -> None:
        due = [o for o in self.open_orders if o.tif is TimeInForce.GTD and o.expire_ts <= ts]
        for order in sorted(due, key=lambda o: (o.expire_ts, o.order_id)):
            self.close(order, OrderStatus.EXPIRED, CloseReason.GTD_EXPIRED)

    # -- placing -----------------------------------------------------------------------------

    def _PlaceOrder(self, c: cmd.PlaceOrder, ts: int) -> None:
        account, symbol, cid = c.account, c.symbol, c.client_order_id
        inst = self.instruments.get(symbol)
        if inst is None:
            return self.reject(account, symbol, Reject.UNKNOWN_SYMBOL, "unknown symbol", cid)
        if account not in self.fee_rates:
            return self.reject(account, symbol, Reject.UNKNOWN_ACCOUNT, "unknown account", cid)
        if symbol in self.halted:
            return self.reject(account, symbol, Reject.SYMBOL_HALTED, "trading halted", cid)
        problem = order_problem(c, inst, ts)
        if problem:
            return self.reject(account, symbol, problem[0], problem[1], cid)
        if cid:
            existing = self.find_by_client_id(account, cid)
            if existing is not None:
                message = f"client order id is in use by open order {existing.order_id}"
                return self.reject(
                    account,
                    symbol,
                    Reject.DUPLICATE_CLIENT_ORDER_ID,
                    message,
                    cid,
                    existing.order_id,
                )
        self.expire_due(ts)
        order = RefOrder(
            self.next_order_id,
            account,
            symbol,
            c.side,
            c.type,
            c.qty,
            c.price,
            c.tif,
            c.quote_qty,
            c.stop_price,
            c.expire_ts,
            c.post_only,
            c.visible_qty,
            c.stp,
            cid,
        )
        last = self.last_prices.get(symbol)
        if c.type.is_stop:
            if last is not None and is_triggered(order, last):
                return self.reject(
                    account,
                    symbol,
                    Reject.STOP_WOULD_TRIGGER_IMMEDIATELY,
                    "the stop price is already reached",
                    cid,
                )
        elif c.type is OrderType.MARKET and not self.side_queue(symbol, c.side.opposite):
            return self.reject(account, symbol, Reject.NO_LIQUIDITY, "no liquidity", cid)
        elif c.post_only and self.crosses(symbol, c.side, c.price):
            return self.reject(
                account, symbol, Reject.POST_ONLY_WOULD_TAKE, "post-only order would take", cid
            )
        hold, order.hold_bps = self.hold_at_entry(order, inst)
        asset = self.hold_asset(order)
        if self.balances.get((account, asset), [0, 0])[0] < hold:
            return self.reject(account, symbol, Reject.INSUFFICIENT_FUNDS, NO_FUNDS, cid)
        if c.tif is TimeInForce.FOK and not c.type.is_stop and not self.can_fill(order):
            return self.reject(
                account, symbol, Reject.FOK_CANNOT_FILL, "FOK order cannot fill completely", cid
            )
        self.next_order_id += 1
        self.move(account, asset, -hold, hold)
        order.locked = hold
        order.working = not c.type.is_stop
        self.open_orders.append(order)
        self.events.append(
            ev.OrderAccepted(
                order.order_id,
                account,
                symbol,
                c.side,
                c.type,
                c.qty,
                c.price,
                c.tif,
                c.quote_qty,
                c.stop_price,
                c.expire_ts,
                c.post_only,
                c.visible_qty,
                c.stp,
                cid,
                order.working,
            )
        )
        if order.working:
            self.execute(order)
            self.run_stops(symbol)
        return None

    def hold_at_entry(self, order: RefOrder, inst: Instrument) -> tuple[int, int]:
        """(amount, fee bps reserved) a new order locks, per the contract's hold rules."""
        if order.side is Side.SELL:
            return order.qty * inst.lot_units, 0
        maker_bps, taker_bps = self.fee_rates[order.account]
        taker_bps = max(taker_bps, 0)
        if order.type in LIMIT_PRICED:
            worst = max(maker_bps, taker_bps)
            notional = order.price * order.qty * inst.notional_units
            return notional + fee_rounded_up(notional, worst), worst
        if order.quote_qty:
            return order.quote_qty + fee_rounded_up(order.quote_qty, taker_bps), taker_bps
        if order.type is OrderType.MARKET:
            notional, wanted = 0, order.qty
            for maker in self.side_queue(order.symbol, Side.SELL):
                own = maker.account == order.account
                if own and order.tif is TimeInForce.FOK and order.stp is StpMode.EXPIRE_MAKER:
                    continue  # a FOK must afford the path its match will take
                lots = min(wanted, maker.remaining)
                notional += lots * maker.price * inst.notional_units
                wanted -= lots
        else:
            notional = order.stop_price * order.qty * inst.notional_units
        return notional + fee_rounded_up(notional, taker_bps), taker_bps

    def can_fill(self, order: RefOrder) -> bool:
        """FOK: is there enough to take now, up to the order's price?

        Own orders are skipped when self-trade prevention would expire them (EXPIRE_MAKER);
        under any other mode the taker could not trade past them, so counting stops there.
        """
        got, counted = 0, []
        for maker in self.side_queue(order.symbol, order.side.opposite):
            if not self.price_ok(order, maker.price):
                break
            if order.stp is not StpMode.NONE and maker.account == order.account:
                if order.stp is StpMode.EXPIRE_MAKER:
                    continue
                # before the match reaches it, orders ahead at its price show only their
                # visible part: an iceberg's refill goes to the back, behind this order
                got -= sum(o.remaining - o.shown for o in counted if o.price == maker.price)
                break
            got += maker.remaining
            counted.append(maker)
        return got >= order.qty

    def price_ok(self, taker: RefOrder, price: int) -> bool:
        if taker.type.is_market:
            return True
        return price <= taker.price if taker.side is Side.BUY else price >= taker.price

    # -- matching ----------------------------------------------------------------------------

    def execute(self, order: RefOrder) -> None:
        """Match a working order as taker, then rest or end what is left of it."""
        taker_bps = self.fee_rates[order.account][1]
        if order.side is Side.BUY:
            taker_bps = min(taker_bps, order.hold_bps)
        why = self.match(order, taker_bps)
        if not order.status.is_open:
            return
        market = order.type.is_market
        if why == SELF_TRADE:
            self.close(order, OrderStatus.EXPIRED_IN_MATCH, CloseReason.SELF_TRADE)
        elif not market and order.tif in (TimeInForce.GTC, TimeInForce.GTD):
            self.rest(order)
        elif why == BUDGET:
            self.close(order, OrderStatus.EXPIRED, CloseReason.INSUFFICIENT_FUNDS)
        elif market:
            self.close(order, OrderStatus.EXPIRED, CloseReason.NO_LIQUIDITY)
        else:
            self.close(order, OrderStatus.EXPIRED, CloseReason.IOC_REMAINDER)

    def match(self, taker: RefOrder, taker_bps: int) -> str:
        inst = self.instruments[taker.symbol]
        by_quote = taker.quote_qty > 0
        while by_quote or taker.remaining > 0:
            queue = self.side_queue(taker.symbol, taker.side.opposite)
            if not queue or not self.price_ok(taker, queue[0].price):
                return DONE
            maker = queue[0]
            unit = maker.price * inst.notional_units
            lots = maker.shown if by_quote else min(taker.remaining, maker.shown)
            if by_quote:
                lots = min(lots, (taker.quote_qty - taker.quote_spent) // unit)
            elif taker.side is Side.BUY and taker.type.is_market:
                lots = min(lots, taker.locked // unit)
                while lots > 0 and lots * unit + fee(lots * unit, taker_bps) > taker.locked:
                    lots -= 1
            if lots <= 0:
                return BUDGET  # a taker that cannot pay for a lot does not get to STP either
            if taker.stp is not StpMode.NONE and maker.account == taker.account:
                if self.prevent_self_trade(taker, maker):
                    return SELF_TRADE
                continue
            self.trade(taker, maker, lots, taker_bps)
        return DONE

    def prevent_self_trade(self, taker: RefOrder, maker: RefOrder) -> bool:
        """Apply the taker's STP mode against its own resting order; True ends the taker."""
        mode = taker.stp
        if mode is StpMode.EXPIRE_TAKER:
            return True
        if mode in (StpMode.EXPIRE_MAKER, StpMode.EXPIRE_BOTH):
            self.close(maker, OrderStatus.EXPIRED_IN_MATCH, CloseReason.SELF_TRADE)
            return mode is StpMode.EXPIRE_BOTH
        # DECREMENT: both shrink by the smaller remainder (a quote-sized taker just ends)
        if taker.quote_qty:
            return True
        lots = min(taker.remaining, maker.remaining)
        taker.qty -= lots
        maker.qty -= lots
        self.level_changed(maker)
        if maker.remaining == 0:
            self.close(maker, OrderStatus.EXPIRED_IN_MATCH, CloseReason.SELF_TRADE)
        else:
            maker.shown = min(maker.shown, maker.remaining)
            self.release_excess(maker)
            self.amended(maker, kept_priority=True)
        if taker.remaining == 0:
            return True
        self.release_excess(taker)
        self.amended(taker, kept_priority=True)
        return False

    def trade(self, taker: RefOrder, maker: RefOrder, lots: int, taker_bps: int) -> None:
        inst = self.instruments[taker.symbol]
        price = maker.price
        notional = price * lots * inst.notional_units
        base_units = lots * inst.lot_units
        maker.filled += lots
        maker.shown -= lots
        taker.filled += lots
        taker.quote_spent += notional
        self.level_changed(maker)
        if maker.shown == 0:
            if maker.remaining > 0:
                self.rest(maker)  # an iceberg refills at the back of its level
            else:
                maker.resting = False
        maker_bps = self.fee_rates[maker.account][0]
        if maker.side is Side.BUY:
            maker_bps = min(maker_bps, maker.hold_bps)
        maker_fee, taker_fee = fee(notional, maker_bps), fee(notional, taker_bps)
        if taker.side is Side.BUY:
            buyer, buyer_fee, seller, seller_fee = taker, taker_fee, maker, maker_fee
        else:
            buyer, buyer_fee, seller, seller_fee = maker, maker_fee, taker, taker_fee
        buyer.locked -= notional + buyer_fee
        self.move(buyer.account, inst.quote, 0, -(notional + buyer_fee))
        self.move(buyer.account, inst.base, base_units, 0)
        seller.locked -= base_units
        self.move(seller.account, inst.base, 0, -base_units)
        self.move(seller.account, inst.quote, notional - seller_fee, 0)
        self.fees_collected[inst.quote] = (
            self.fees_collected.get(inst.quote, 0) + buyer_fee + seller_fee
        )
        maker_done = maker.remaining == 0
        if taker.quote_qty:  # spent once the rest buys no lot even at this (best) price
            taker_done = taker.quote_qty - taker.quote_spent < price * inst.notional_units
        else:
            taker_done = taker.remaining == 0
        maker.status = OrderStatus.FILLED if maker_done else OrderStatus.PARTIALLY_FILLED
        taker.status = OrderStatus.FILLED if taker_done else OrderStatus.PARTIALLY_FILLED
        self.last_prices[taker.symbol] = price
        self.events.append(
            ev.TradeExecuted(
                self.next_trade_id,
                taker.symbol,
                price,
                lots,
                notional,
                taker.side,
                maker.order_id,
                maker.account,
                maker_fee,
                maker.filled,
                maker.status,
                taker.order_id,
                taker.account,
                taker_fee,
                taker.filled,
                taker.status,
                maker.client_order_id,
                taker.client_order_id,
            )
        )
        self.next_trade_id += 1
        for order, done in ((maker, maker_done), (taker, taker_done)):
            if done:
                self.finish(order)
            else:
                self.release_excess(order)

    def run_stops(self, symbol: str) -> None:
        """Trigger waiting stops one at a time while the last price reaches any of them."""
        while True:
            last = self.last_prices.get(symbol)
            if last is None:
                return
            waiting = [
                o
                for o in self.open_orders
                if o.symbol == symbol and not o.working and is_triggered(o, last)
            ]
            rising = [o for o in waiting if rises_to_trigger(o)]
            falling = [o for o in waiting if not rises_to_trigger(o)]
            if rising:
                order = min(rising, key=lambda o: (o.stop_price, o.order_id))
            elif falling:
                order = min(falling, key=lambda o: (-o.stop_price, o.order_id))
            else:
                return
            order.working = True
            self.events.append(
                ev.OrderTriggered(
                    order.order_id,
                    order.account,
                    symbol,
                    order.client_order_id,
                    last,
                )
            )
            if order.type.is_market and not self.side_queue(symbol, order.side.opposite):
                self.close(order, OrderStatus.EXPIRED, CloseReason.NO_LIQUIDITY)
            else:
                self.execute(order)

    # -- cancel, amend, expire ---------------------------------------------------------------

    def target(self, account: int, symbol: str, order_id: int, cid: str) -> RefOrder | None:
        """The caller's open order named by id or client id, or None after a rejection."""
        if symbol not in self.instruments:
            self.reject(account, symbol, Reject.UNKNOWN_SYMBOL, "unknown symbol", cid)
            return None
        if account not in self.fee_rates:
            self.reject(account, symbol, Reject.UNKNOWN_ACCOUNT, "unknown account", cid)
            return None
        if order_id:
            order = self.find_open(order_id)
            ever_issued = 0 < order_id < self.next_order_id
        elif cid:
            order = self.find_by_client_id(account, cid)
            ever_issued = False
        else:
            self.reject(
                account, symbol, Reject.INVALID_ORDER_PARAMETERS, "give an order id or client id"
            )
            return None
        if order is not None and order.account == account and order.symbol == symbol:
            return order
        if order is None and ever_issued:
            self.reject(account, symbol, Reject.ORDER_NOT_OPEN, "order is not open", cid, order_id)
        else:
            self.reject(account, symbol, Reject.UNKNOWN_ORDER, "Unknown order sent.", cid, order_id)
        return None

    def _CancelOrder(self, c: cmd.CancelOrder, ts: int) -> None:
        order = self.target(c.account, c.symbol, c.order_id, c.client_order_id)
        if order is not None:
            self.close(order, OrderStatus.CANCELED, CloseReason.USER)

    def _CancelAllOrders(self, c: cmd.CancelAllOrders, ts: int) -> None:
        if c.symbol not in self.instruments:
            return self.reject(c.account, c.symbol, Reject.UNKNOWN_SYMBOL, "unknown symbol")
        if c.account not in self.fee_rates:
            return self.reject(c.account, c.symbol, Reject.UNKNOWN_ACCOUNT, "unknown account")
        mine = [o for o in self.open_orders if o.account == c.account and o.symbol == c.symbol]
        for order in sorted(mine, key=lambda o: o.order_id):
            self.close(order, OrderStatus.CANCELED, CloseReason.CANCEL_ALL)
        return None

    def _AmendOrder(self, c: cmd.AmendOrder, ts: int) -> None:
        order = self.target(c.account, c.symbol, c.order_id, c.client_order_id)
        if order is None:
            return None
        inst = self.instruments[order.symbol]

        def reject(code: Reject, message: str) -> None:
            self.reject(
                c.account, order.symbol, code, message, order.client_order_id, order.order_id
            )

        if order.symbol in self.halted:
            return reject(Reject.SYMBOL_HALTED, "trading halted")
        if not order.resting:
            return reject(Reject.INVALID_ORDER_PARAMETERS, "only resting limit orders amend")
        new_qty = c.qty if c.qty != 0 else order.qty
        new_price = c.price if c.price != 0 else order.price
        if new_qty == order.qty and new_price == order.price:
            return reject(Reject.AMEND_NO_CHANGE, "amend changes nothing")
        problem = price_problem(inst, new_price) or qty_problem(inst, new_qty)
        if problem:
            return reject(*problem)
        if new_qty <= order.filled:
            return reject(Reject.AMEND_BELOW_FILLED, "new quantity must exceed the filled part")
        if new_price * new_qty * inst.notional_units < inst.min_notional:
            return reject(Reject.BELOW_MIN_NOTIONAL, "notional below the instrument's minimum")
        self.expire_due(ts)
        if order not in self.open_orders:
            return None  # it expired just now
        if new_price == order.price and new_qty < order.qty:
            order.qty = new_qty
            order.shown = min(order.shown, order.remaining)
            self.level_changed(order)
            self.release_excess(order)
            self.amended(order, kept_priority=True)
            return None
        # any other change is a cancel-replace: the order loses its place and may trade
        old_qty, old_price, old_locked = order.qty, order.price, order.locked
        order.qty, order.price = new_qty, new_price
        new_locked = self.hold_needed(order)
        asset = self.hold_asset(order)
        free = self.balances.get((order.account, asset), [0, 0])[0]
        problem = None
        if free + old_locked < new_locked:
            problem = Reject.INSUFFICIENT_FUNDS, NO_FUNDS
        elif (
            order.post_only
            and new_price != old_price
            and self.crosses(order.symbol, order.side, new_price)
        ):
            problem = Reject.POST_ONLY_WOULD_TAKE, "post-only order would take"
        order.qty, order.price = old_qty, old_price
        if problem:
            return reject(*problem)
        self.unrest(order)
        order.qty, order.price, order.quote_spent = new_qty, new_price, 0
        order.locked = new_locked
        # the replacement takes its hold afresh: that balance counts as touched even when
        # the amount is the same (a sell moved to another price)
        self.move(
            order.account, asset, old_locked - new_locked, new_locked - old_locked, always=True
        )
        self.amended(order, kept_priority=False)
        self.execute(order)
        self.run_stops(order.symbol)
        return None

    def _ExpireOrders(self, c: cmd.ExpireOrders, ts: int) -> None:
        self.expire_due(ts)

    # -- admin -------------------------------------------------------------------------------

    @staticmethod
    def fees_valid(maker_bps: int, taker_bps: int) -> bool:
        return 0 <= taker_bps <= 1000 and -taker_bps <= maker_bps <= 1000

    def _CreateAccount(self, c: cmd.CreateAccount, ts: int) -> None:
        if c.account in self.fee_rates or c.account <= 0:
            return self.reject(c.account, "", Reject.ACCOUNT_EXISTS, "account exists or invalid")
        if not self.fees_valid(c.maker_fee_bps, c.taker_fee_bps):
            return self.reject(c.account, "", Reject.INVALID_FEES, "fees out of range")
        self.fee_rates[c.account] = (c.maker_fee_bps, c.taker_fee_bps)
        self.events.append(ev.AccountCreated(c.account, c.maker_fee_bps, c.taker_fee_bps))
        return None

    def _SetFees(self, c: cmd.SetFees, ts: int) -> None:
        if c.account not in self.fee_rates:
            return self.reject(c.account, "", Reject.UNKNOWN_ACCOUNT, "unknown account")
        if not self.fees_valid(c.maker_fee_bps, c.taker_fee_bps):
            return self.reject(c.account, "", Reject.INVALID_FEES, "fees out of range")
        self.fee_rates[c.account] = (c.maker_fee_bps, c.taker_fee_bps)
        self.events.append(ev.FeesChanged(c.account, c.maker_fee_bps, c.taker_fee_bps))
        return None

    def funds_problem(self, c: cmd.Deposit | cmd.Withdraw) -> tuple[Reject, str] | None:
        if c.account not in self.fee_rates:
            return Reject.UNKNOWN_ACCOUNT, "unknown account"
        if c.asset not in self.assets:
            return Reject.UNKNOWN_ASSET, "unknown asset"
        if c.amount <= 0:
            return Reject.INVALID_AMOUNT, "amount must be positive"
        if not c.tx_id:
            return Reject.INVALID_AMOUNT, "a transaction id is required"
        if c.tx_id in self.tx_ids:
            return Reject.DUPLICATE_TRANSACTION, "transaction already applied"
        return None

    def _Deposit(self, c: cmd.Deposit, ts: int) -> None:
        problem = self.funds_problem(c)
        if (
            problem is None
            and sum(self.balances.get((c.account, c.asset), [0, 0])) + c.amount > MAX_AMOUNT
        ):
            problem = Reject.INVALID_AMOUNT, "balance would exceed 2**62 units"
        if problem:
            return self.reject(c.account, "", *problem)
        self.tx_ids.add(c.tx_id)
        self.move(c.account, c.asset, c.amount, 0)
        self.events.append(ev.FundsDeposited(c.account, c.asset, c.amount, c.tx_id))
        return None

    def _Withdraw(self, c: cmd.Withdraw, ts: int) -> None:
        problem = self.funds_problem(c)
        if problem is None and self.balances.get((c.account, c.asset), [0, 0])[0] < c.amount:
            problem = Reject.INSUFFICIENT_FUNDS, NO_FUNDS
        if problem:
            return self.reject(c.account, "", *problem)
        self.tx_ids.add(c.tx_id)
        self.move(c.account, c.asset, -c.amount, 0)
        self.events.append(ev.FundsWithdrawn(c.account, c.asset, c.amount, c.tx_id))
        return None

    def _AddAsset(self, c: cmd.AddAsset, ts: int) -> None:
        asset = c.asset
        if asset.code in self.assets:
            return self.reject(0, "", Reject.ASSET_EXISTS, f"asset {asset.code} exists")
        if not asset.code or not 0 <= asset.precision <= 18:
            return self.reject(0, "", Reject.INVALID_INSTRUMENT, "asset precision must be 0-18")
        self.assets[asset.code] = asset
        self.events.append(ev.AssetAdded(asset))
        return None

    def _AddInstrument(self, c: cmd.AddInstrument, ts: int) -> None:
        inst = c.instrument
        if inst.symbol in self.instruments:
            return self.reject(0, inst.symbol, Reject.SYMBOL_EXISTS, f"symbol {inst.symbol} exists")
        base, quote = self.assets.get(inst.base), self.assets.get(inst.quote)
        if base is None or quote is None:
            return self.reject(0, inst.symbol, Reject.UNKNOWN_ASSET, "unknown base or quote asset")
        consistent = (
            base.precision == inst.base_precision
            and quote.precision == inst.quote_precision
            and inst.lot_units > 0
            and inst.notional_units > 0
            and 0 < inst.min_price <= inst.max_price
            and 0 < inst.min_qty <= inst.max_qty
        )
        if not consistent:
            return self.reject(0, inst.symbol, Reject.INVALID_INSTRUMENT, "inconsistent instrument")
        self.instruments[inst.symbol] = inst
        self.events.append(ev.InstrumentAdded(inst))
        return None

    def _HaltTrading(self, c: cmd.HaltTrading, ts: int) -> None:
        if c.symbol not in self.instruments:
            return self.reject(0, c.symbol, Reject.UNKNOWN_SYMBOL, "unknown symbol")
        self.halted.add(c.symbol)
        self.events.append(ev.TradingHalted(c.symbol))
        return None

    def _ResumeTrading(self, c: cmd.ResumeTrading, ts: int) -> None:
        if c.symbol not in self.instruments:
            return self.reject(0, c.symbol, Reject.UNKNOWN_SYMBOL, "unknown symbol")
        self.halted.discard(c.symbol)
        self.events.append(ev.TradingResumed(c.symbol))
        return None
