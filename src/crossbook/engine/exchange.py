"""`Exchange.apply(seq, ts, command) -> list[Event]`: the whole venue as a pure state machine.

Contract
- Deterministic: the same commands with the same stamps give the same events and the same
  `state_hash()`. No I/O, no clock, no randomness, no logging. Time is the stamp `ts`.
- A command that cannot be carried out yields one `OrderRejected` with a `Reject` code and
  leaves the state exactly as it was: every check runs before the first mutation.
- Events of one command come in causal order; the command's `BalanceChanged` (absolute, once
  per touched account and asset) and `DepthChanged` (one per changed book) come last.

Holds (pre-trade risk) are taken at entry, in the asset the order pays with:
- sell: its size in base units;
- limit buy (and stop/take-profit limit buy): notional at its price plus the fee at the
  larger of the account's maker and taker rates, rounded up;
- market buy by quote amount: that amount plus the taker fee on it;
- market buy by base size: the cost of walking the book now plus the taker fee; the order
  then spends at most that (a gapped book expires the rest). A FOK order whose self-trade
  mode is EXPIRE_MAKER walks past its own orders, as its match will, so it never runs out;
- stop/take-profit market buy: stop price times size plus the taker fee, spent the same way.
Fees are charged in the quote asset, truncated toward zero, at the account's current rate but
never above the rate the hold reserved. What a fill does not use is released at once.

Orders: price-time priority; amend that only lowers the size keeps priority, any other amend
is an atomic cancel-replace that may trade. Self-trade prevention follows the taker's mode.
GTD orders expire on `ExpireOrders` and, lazily, before a place or amend stamped past them:
that expiry acts as an `ExpireOrders` at the same stamp just before the command, so its
events come first and stay even when the command itself is then rejected (the rejection
leaves the state as the expiry left it). A resting order therefore never trades after its
expiry time, whatever the timer's lag.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any, Final

import msgspec
from msgspec.structs import astuple

from crossbook.domain import commands as cmd
from crossbook.domain import events as ev
from crossbook.domain.commands import CancelOrder, PlaceOrder
from crossbook.domain.enums import (
    CloseReason,
    OrderStatus,
    OrderType,
    Side,
    StpMode,
    TimeInForce,
)
from crossbook.domain.events import (
    BalanceChanged,
    DepthChanged,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    TradeExecuted,
)
from crossbook.domain.instruments import Asset, Instrument
from crossbook.domain.rejects import Reject
from crossbook.engine import invariants, snapshot
from crossbook.engine.access import ApiKey, check_create
from crossbook.engine.accounts import MAX_BALANCE, Account, Balance, hold_fee, valid_fees
from crossbook.engine.book import (
    FILL,
    STOP_BUDGET,
    STOP_STP_TAKER,
    STP_EXPIRE_MAKER,
    Book,
    Reporter,
    fee_of,
    level_changes,
)
from crossbook.engine.lifecycle import TRANSITIONS, InvariantError, Step, advance
from crossbook.engine.order import Order, OrderView
from crossbook.engine.stops import StopBook, would_trigger
from crossbook.engine.validation import CLIENT_ORDER_ID, check_order, check_price, check_qty

__all__ = ["Exchange", "InvariantError"]

# Enum members read through their class cost ~0.1 us each on CPython 3.11; the hot path
# compares against these module constants instead (same objects, `is` still holds). `Final`
# lets mypyc keep them in C statics instead of looking them up in the module's dict.
BUY: Final = Side.BUY
SELL: Final = Side.SELL
LIMIT: Final = OrderType.LIMIT
MARKET: Final = OrderType.MARKET
GTC: Final = TimeInForce.GTC
GTD: Final = TimeInForce.GTD
FOK: Final = TimeInForce.FOK
NEW: Final = OrderStatus.NEW
PARTIALLY_FILLED: Final = OrderStatus.PARTIALLY_FILLED
FILLED: Final = OrderStatus.FILLED
CANCEL: Final = Step.CANCEL
EXPIRE: Final = Step.EXPIRE
EXPIRE_IN_MATCH: Final = Step.EXPIRE_IN_MATCH
USER: Final = CloseReason.USER
CANCEL_ALL: Final = CloseReason.CANCEL_ALL
GTD_EXPIRED: Final = CloseReason.GTD_EXPIRED
IOC_REMAINDER: Final = CloseReason.IOC_REMAINDER
NO_LIQUIDITY: Final = CloseReason.NO_LIQUIDITY
INSUFFICIENT_FUNDS: Final = CloseReason.INSUFFICIENT_FUNDS
SELF_TRADE: Final = CloseReason.SELF_TRADE
_EXPIRE: Final = cmd.ExpireOrders()
# Classes and functions from other modules, as final module constants too: mypyc reads a
# plain imported name from the module's dict at every use.
_PLACE_ORDER: Final = PlaceOrder
_CANCEL_ORDER: Final = CancelOrder
_ASTUPLE: Final = astuple
_BALANCE_CHANGED: Final = BalanceChanged
_DEPTH_CHANGED: Final = DepthChanged
_ORDER_ACCEPTED: Final = OrderAccepted
_ORDER_CANCELED: Final = OrderCanceled
_ORDER_EXPIRED: Final = OrderExpired
_TRADE_EXECUTED: Final = TradeExecuted
_PLACE_FIELDS: Final = (
    "account", "symbol", "side", "type", "qty", "price", "tif", "quote_qty", "stop_price",
    "expire_ts", "post_only", "visible_qty", "stp", "client_order_id",
)
_CANCEL_FIELDS: Final = ("account", "symbol", "order_id", "client_order_id")
if PlaceOrder.__struct_fields__ != _PLACE_FIELDS:  # `_place` unpacks them in this order
    raise ImportError("PlaceOrder's fields changed: update Exchange._place")
if CancelOrder.__struct_fields__ != _CANCEL_FIELDS:  # `_cancel` unpacks them in this order
    raise ImportError("CancelOrder's fields changed: update Exchange._cancel")
STOP_LOSS: Final = OrderType.STOP_LOSS
TAKE_PROFIT: Final = OrderType.TAKE_PROFIT
_LIMIT_TYPES: Final = (OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)
_CLOSED_BY: Final = {step: TRANSITIONS[NEW, step] for step in (CANCEL, EXPIRE, EXPIRE_IN_MATCH)}


def _is_market(typ: OrderType) -> bool:
    """Does an order of this type take at any price (market, stop-loss, take-profit)?"""
    return typ is MARKET or typ is STOP_LOSS or typ is TAKE_PROFIT


class Market:
    """One symbol's hot-path index: its book, its stops and its instrument's numbers.

    The numbers are copied out of the (frozen) instrument as plain ints and strings, so the
    order path reads native attributes instead of struct fields. `halted` mirrors whether the
    symbol is in `Exchange.halted` (the exchange keeps both in step).
    """

    __slots__ = (
        "base",
        "book",
        "halted",
        "inst",
        "lot_units",
        "max_price",
        "max_qty",
        "min_notional",
        "min_price",
        "min_qty",
        "notional_units",
        "quote",
        "stops",
        "symbol",
    )

    def __init__(self, inst: Instrument, book: Book, stops: StopBook) -> None:
        self.symbol: str = inst.symbol
        self.inst = inst
        self.book = book
        self.stops = stops
        self.base: str = inst.base
        self.quote: str = inst.quote
        self.lot_units: int = inst.lot_units
        self.notional_units: int = inst.notional_units
        self.min_price: int = inst.min_price
        self.max_price: int = inst.max_price
        self.min_qty: int = inst.min_qty
        self.max_qty: int = inst.max_qty
        self.min_notional: int = inst.min_notional
        self.halted = False


class Exchange(Reporter):
    """The venue's whole state and the only function that changes it, `apply`.

    (`on_match` is the matching walk's report back, called only from inside `apply`.)
    """

    def __init__(self) -> None:
        self.assets_: dict[str, Asset] = {}
        self.instruments_: dict[str, Instrument] = {}
        self.books: dict[str, Book] = {}
        self.markets: dict[str, Market] = {}
        """Built on first use from `instruments_`, `books` and `stops` (so also after restore)."""
        self.stops: dict[str, StopBook] = {}
        self.halted: set[str] = set()
        self.accounts_: dict[int, Account] = {}
        self.orders: dict[int, Order] = {}
        self.client_ids: dict[tuple[int, str], int] = {}
        self.last_prices: dict[str, int] = {}
        self.expiries: list[tuple[int, int]] = []
        self.tx_ids: set[str] = set()
        self.fees_collected: dict[str, int] = {}
        self.deposited: dict[str, int] = {}
        self.withdrawn: dict[str, int] = {}
        self.next_order_id = 1
        self.next_trade_id = 1
        self.last_seq = 0
        self.api_keys_: dict[str, ApiKey] = {}
        self._events: list[ev.Event] = []
        self._replayed: list[ev.Event] = []
        """The scratch list `replay` collects (and drops) a command's events in."""
        self._touched: list[Balance] = []
        """The balances the current command changed, in order of first change (`_touch`)."""
        self._dirty: list[Book] = []
        """The books the current command may have changed (`_mark`)."""
        # the taker being matched, for `on_match`
        self._taker = Order(
            0, 0, "", BUY, OrderType.LIMIT, 0, 0, TimeInForce.GTC, 0, 0, 0, False, 0,
            StpMode.NONE, "",
        )
        self._taker_acct = Account(0, 0, 0)
        self._taker_bps = 0
        # what the current walk's fills add to `fees_collected` and `last_prices`, written
        # once when the walk returns (`_settle_walk`): nothing reads them during it
        self._walk_fills = 0
        self._walk_fees = 0
        self._walk_price = 0
        self._market = Market(Instrument("", "", "", "1", "1", 0, 0, 1, 1), Book(""), StopBook())
        self._handlers: dict[type, Callable[[Any, int], None]] = {
            cmd.PlaceOrder: self._place,
            cmd.CancelOrder: self._cancel,
            cmd.CancelAllOrders: self._cancel_all,
            cmd.AmendOrder: self._amend,
            cmd.ExpireOrders: self._expire_due,
            cmd.CreateAccount: self._create_account,
            cmd.SetFees: self._set_fees,
            cmd.Deposit: self._deposit,
            cmd.Withdraw: self._withdraw,
            cmd.AddAsset: self._add_asset,
            cmd.AddInstrument: self._add_instrument,
            cmd.HaltTrading: self._halt,
            cmd.ResumeTrading: self._resume,
            cmd.CreateApiKey: self._create_api_key,
            cmd.RevokeApiKey: self._revoke_api_key,
        }

    # -- the one entry point ---------------------------------------------------------------

    def apply(self, seq: int, ts: int, command: cmd.Command) -> list[ev.Event]:
        events: list[ev.Event] = []
        self._events = events
        self.last_seq = seq
        if type(command) is _PLACE_ORDER:
            self._place(command, ts)
        elif type(command) is _CANCEL_ORDER:
            self._cancel(command, ts)
        else:
            self._handlers[type(command)](command, ts)
        touched = self._touched
        if touched:
            for bal in touched:
                bal.touched = False
                changed = _BALANCE_CHANGED(bal.account, bal.asset, bal.free, bal.locked)
                events.append(changed)
            touched.clear()
        dirty = self._dirty
        if dirty:
            for book in dirty:
                book.queued = False
                dirty_bids, dirty_asks = book.dirty_bids, book.dirty_asks
                if dirty_bids or dirty_asks:  # `Book.take_changes`, inlined
                    bids = level_changes(dirty_bids, book.bid_levels, True) if dirty_bids else []
                    asks = level_changes(dirty_asks, book.ask_levels, False) if dirty_asks else []
                    book.update_id += 1
                    events.append(_DEPTH_CHANGED(book.symbol, book.update_id, bids, asks))
            dirty.clear()
        return events

    def replay(self, seq: int, ts: int, command: cmd.Command) -> None:
        """`apply` for recovery: the same change of state, without the closing `BalanceChanged`
        and `DepthChanged` events (nobody reads a replayed command's events). Books advance
        their update ids exactly as under `apply`, so live depth streams continue gaplessly."""
        events = self._replayed
        events.clear()
        self._events = events
        self.last_seq = seq
        if type(command) is _PLACE_ORDER:
            self._place(command, ts)
        elif type(command) is _CANCEL_ORDER:
            self._cancel(command, ts)
        else:
            self._handlers[type(command)](command, ts)
        touched = self._touched
        if touched:
            for bal in touched:
                bal.touched = False
            touched.clear()
        dirty = self._dirty
        if dirty:
            for book in dirty:
                book.queued = False
                if book.dirty_bids or book.dirty_asks:
                    book.drop_changes()
                    book.update_id += 1
            dirty.clear()

    def _reject(
        self,
        account: int,
        symbol: str,
        code: Reject,
        message: str,
        client_order_id: str = "",
        order_id: int = 0,
    ) -> None:
        self._events.append(
            ev.OrderRejected(
                account, symbol, client_order_id, code, message, order_id
            )
        )

    def _touch(self, bal: Balance) -> None:
        """Queue a changed balance for the command's closing `BalanceChanged` (once)."""
        if not bal.touched:
            bal.touched = True
            self._touched.append(bal)

    def _mark(self, book: Book) -> None:
        """Queue a book whose levels may have changed for the command's `DepthChanged`."""
        if not book.queued:
            book.queued = True
            self._dirty.append(book)

    # -- placing ---------------------------------------------------------------------------

    def _market_of(self, symbol: str) -> Market | None:
        market = self.markets.get(symbol)
        if market is None:
            inst = self.instruments_.get(symbol)
            if inst is None:
                return None
            market = Market(inst, self.books[symbol], self.stops[symbol])
            market.halted = symbol in self.halted
            self.markets[symbol] = market
        return market

    def _place(self, c: PlaceOrder, ts: int) -> None:
        # all fields in one call: each struct field read is a generic attribute lookup under
        # mypyc (`_PLACE_FIELDS` pins the order at import)
        account: int
        symbol: str
        side: Side
        typ: OrderType
        qty: int
        price: int
        tif: TimeInForce
        quote_qty: int
        stop_price: int
        expire_ts: int
        post_only: bool
        visible_qty: int
        stp: StpMode
        cid: str
        fields: tuple[Any, ...] = _ASTUPLE(c)
        (
            account, symbol, side, typ, qty, price, tif, quote_qty, stop_price, expire_ts,
            post_only, visible_qty, stp, cid,
        ) = fields
        market = self.markets.get(symbol) or self._market_of(symbol)
        acct = self.accounts_.get(account)
        if market is None:
            return self._reject(account, symbol, Reject.UNKNOWN_SYMBOL, "unknown symbol", cid)
        if acct is None:
            return self._reject(account, symbol, Reject.UNKNOWN_ACCOUNT, "unknown account", cid)
        if market.halted:
            return self._reject(account, symbol, Reject.SYMBOL_HALTED, "trading halted", cid)
        # the plain GTC limit order on the grid and the plain market order sized in lots (most
        # orders) pass `check_order`: only the others need it
        if not (
            not (quote_qty or stop_price or expire_ts or post_only or visible_qty)
            and market.min_qty <= qty <= market.max_qty
            and (
                (
                    typ is LIMIT
                    and tif is GTC
                    and market.min_price <= price <= market.max_price
                    and price * qty * market.notional_units >= market.min_notional
                )
                or (typ is MARKET and not price and tif is not GTD)
            )
            and (not cid or CLIENT_ORDER_ID.fullmatch(cid))
        ):
            problem = check_order(c, market.inst, ts)
            if problem:
                return self._reject(account, symbol, problem[0], problem[1], cid)
        if cid:
            existing = self.client_ids.get((account, cid))
            if existing is not None:
                return self._reject(
                    account, symbol, Reject.DUPLICATE_CLIENT_ORDER_ID,
                    f"client order id is in use by open order {existing}", cid, existing,
                )
        expiries = self.expiries
        if expiries and expiries[0][0] <= ts:
            self._expire_due(_EXPIRE, ts)
        book = market.book
        # enum members compare by identity: a pointer test under mypyc, not a rich compare
        waits = typ is not LIMIT and typ is not MARKET  # a stop or take-profit order
        if waits:
            last = self.last_prices.get(symbol)
            if last is not None and would_trigger(side, typ, stop_price, last):
                return self._reject(
                    account, symbol, Reject.STOP_WOULD_TRIGGER_IMMEDIATELY,
                    "the stop price is already reached", cid,
                )
        elif typ is MARKET and not book.has_liquidity(side):
            return self._reject(account, symbol, Reject.NO_LIQUIDITY, "no liquidity", cid)
        elif post_only and book.crosses(side, price):
            return self._reject(
                account, symbol, Reject.POST_ONLY_WOULD_TAKE, "post-only order would take", cid
            )
        order_id = self.next_order_id
        order = Order(
            order_id, account, symbol, side, typ, qty, price, tif, quote_qty,
            stop_price, expire_ts, post_only, visible_qty, stp, cid,
        )
        order.acct = acct
        order.market = market
        if typ is not LIMIT:
            hold_asset, hold, order.hold_bps = self._hold_for(order, market.inst, acct, book)
        elif side is BUY:  # the common limit order: `_hold_for` inlined
            taker = acct.taker_bps if acct.taker_bps > 0 else 0
            worst = acct.maker_bps if acct.maker_bps > taker else taker
            notional = price * qty * market.notional_units
            hold_asset = market.quote
            hold = notional + hold_fee(notional, worst)
            order.hold_bps = worst
        else:
            hold_asset, hold = market.base, qty * market.lot_units
        bal = acct.balances.get(hold_asset)
        if bal is None or bal.free < hold:
            return self._reject(
                account, symbol, Reject.INSUFFICIENT_FUNDS,
                "Account has insufficient balance for requested action.", cid,
            )
        if tif is FOK and not waits and not book.fillable(order, price, qty):
            return self._reject(
                account, symbol, Reject.FOK_CANNOT_FILL, "FOK order cannot fill completely", cid
            )
        # accepted: from here on the state changes
        self.next_order_id = order_id + 1
        bal.free -= hold
        bal.locked += hold
        order.locked = hold
        order.hold_bal = bal
        self._touch(bal)
        oid = order.key
        self.orders[oid] = order
        acct.open_orders[oid] = order
        if cid:
            self.client_ids[account, cid] = order_id
        if tif is GTD:
            heappush(expiries, (expire_ts, order_id))
        working = not waits
        # the command's own field objects: no int boxed again
        self._events.append(
            _ORDER_ACCEPTED(
                oid, fields[0], fields[1], fields[2], fields[3], fields[4], fields[5],
                fields[6], fields[7], fields[8], fields[9], fields[10], fields[11], fields[12],
                fields[13], working,
            )
        )
        if working:
            self._execute(order, market, acct)
            stops = market.stops
            if stops.above or stops.below:
                self._run_stops(market)
        else:
            order.working = False
            market.stops.add(order_id, side, typ, stop_price)
        return None

    def _hold_for(
        self, order: Order, inst: Instrument, acct: Account, book: Book
    ) -> tuple[str, int, int]:
        """(asset, amount, fee bps reserved) an order must lock at entry."""
        if order.side is SELL:
            return inst.base, order.qty * inst.lot_units, 0
        taker = acct.taker_bps if acct.taker_bps > 0 else 0
        if order.type in _LIMIT_TYPES:
            worst = max(acct.maker_bps, taker)
            notional = inst.notional(order.price, order.qty)
            return inst.quote, notional + hold_fee(notional, worst), worst
        if order.quote_qty:
            return inst.quote, order.quote_qty + hold_fee(order.quote_qty, taker), taker
        if order.type is MARKET:
            fok_past_own = order.tif is FOK and order.stp is StpMode.EXPIRE_MAKER
            skip = order.account if fok_past_own else 0
            notional = book.walk_cost(BUY, order.qty, inst.notional_units, skip)
        else:
            notional = inst.notional(order.stop_price, order.qty)
        return inst.quote, notional + hold_fee(notional, taker), taker

    def _execute(self, order: Order, where: Market, acct: Account) -> None:
        """Match a working order as taker, then rest or expire what is left."""
        book = where.book
        market = _is_market(order.type)
        buy = order.side is BUY
        if not book.queued:
            book.queued = True
            self._dirty.append(book)
        if market:
            crossing = True
        elif buy:
            crossing = bool(book.ask_levels) and book.ask_levels[0].price <= order.price
        else:
            crossing = bool(book.bid_levels) and book.bid_levels[-1].price >= order.price
        if crossing:
            taker_bps = acct.taker_bps
            if buy and taker_bps > order.hold_bps:
                taker_bps = order.hold_bps
            quote_cap = order.quote_qty if order.quote_qty else -1
            cash_cap = order.locked if buy and market and not order.quote_qty else -1
            self._taker, self._taker_acct, self._taker_bps = order, acct, taker_bps
            self._market = where
            stop = book.match(
                order, 0 if market else order.price, self, quote_cap, cash_cap, taker_bps,
                where.notional_units,
            )
            if self._walk_fills:
                self._settle_walk(where)
            status = order.status
            if status is not NEW and status is not PARTIALLY_FILLED:
                return
        else:  # a limit order that takes nothing: most orders, so skip the walk's setup
            stop = 0
        if stop == STOP_STP_TAKER:
            self._close(order, EXPIRE_IN_MATCH, SELF_TRADE)
        elif not market and (order.tif is GTC or order.tif is GTD):
            book.insert(order)
        else:
            reason = IOC_REMAINDER if not market else NO_LIQUIDITY
            if stop == STOP_BUDGET:
                reason = INSUFFICIENT_FUNDS
            self._close(order, EXPIRE, reason)

    def on_match(self, kind: int, maker: Order, price: int, lots: int) -> None:
        """One matching step reported by the book: settle it and write its events."""
        taker, taker_acct, market = self._taker, self._taker_acct, self._market
        maker_acct = maker.acct
        if maker_acct is None:
            raise InvariantError(f"Invariant: order {maker.order_id} has no account")
        if kind != FILL:
            if kind == STP_EXPIRE_MAKER:
                self._close(maker, EXPIRE_IN_MATCH, SELF_TRADE)
            else:
                self._decremented(maker, maker_acct, market, maker=True)
                self._decremented(taker, taker_acct, market, maker=False)
            return
        base, quote, notional_units = market.base, market.quote, market.notional_units
        notional = price * lots * notional_units
        base_units = lots * market.lot_units
        taker_buys = taker.side is BUY
        maker_bps = maker_acct.maker_bps
        if not taker_buys and maker_bps > maker.hold_bps:
            maker_bps = maker.hold_bps
        maker_fee = fee_of(notional, maker_bps)
        taker_fee = fee_of(notional, self._taker_bps)
        if taker_buys:
            buyer, buyer_acct, buyer_fee = taker, taker_acct, taker_fee
            seller, seller_acct, seller_fee = maker, maker_acct, maker_fee
        else:
            buyer, buyer_acct, buyer_fee = maker, maker_acct, maker_fee
            seller, seller_acct, seller_fee = taker, taker_acct, taker_fee
        paid = notional + buyer_fee
        buyer.locked -= paid
        seller.locked -= base_units
        # touched in this order: buyer quote, buyer base, seller base, seller quote
        touched = self._touched
        bal = buyer.hold_bal or buyer_acct.balances[quote]
        bal.locked -= paid
        if not bal.touched:
            bal.touched = True
            touched.append(bal)
        bal = buyer.recv_bal or self._receiving(buyer, buyer_acct, base)
        bal.free += base_units
        if not bal.touched:
            bal.touched = True
            touched.append(bal)
        bal = seller.hold_bal or seller_acct.balances[base]
        bal.locked -= base_units
        if not bal.touched:
            bal.touched = True
            touched.append(bal)
        bal = seller.recv_bal or self._receiving(seller, seller_acct, quote)
        bal.free += notional - seller_fee
        if not bal.touched:
            bal.touched = True
            touched.append(bal)
        self._walk_fees += buyer_fee + seller_fee
        maker_done = maker.filled == maker.qty
        if taker.qty:
            taker_done = taker.filled == taker.qty
        else:  # sized by quote: spent once the rest buys no lot even at this (best) price
            taker_done = taker.quote_qty - taker.quote_spent < price * notional_units
        # the lifecycle table's fill rows, inlined: only an open order trades
        status, taker_status = maker.status, taker.status
        if not (status is NEW or status is PARTIALLY_FILLED) or not (
            taker_status is NEW or taker_status is PARTIALLY_FILLED
        ):
            raise InvariantError("Invariant: a closed order traded")
        maker.status = FILLED if maker_done else PARTIALLY_FILLED
        taker.status = FILLED if taker_done else PARTIALLY_FILLED
        trade_id = self.next_trade_id
        self.next_trade_id = trade_id + 1
        self._walk_price = price
        self._walk_fills += 1
        self._events.append(
            _TRADE_EXECUTED(
                trade_id, market.symbol, price, lots, notional,
                taker.side, maker.key, maker.account,
                maker_fee, maker.filled, maker.status, taker.key,
                taker.account, taker_fee, taker.filled, taker.status,
                maker.client_order_id, taker.client_order_id,
            )
        )
        if maker_done:
            self._finish(maker, maker_acct)
        elif not taker_buys:
            self._release_excess(maker, maker_acct, market)
        if taker_done:
            self._finish(taker, taker_acct)
        elif taker_buys and not _is_market(taker.type):
            self._release_excess(taker, taker_acct, market)

    def _receiving(self, order: Order, acct: Account, asset: str) -> Balance:
        """The balance an order's fills pay into, looked up (made if need be) on its first."""
        bal = order.recv_bal = acct.balance(asset)
        return bal

    def _settle_walk(self, market: Market) -> None:
        """Add the walk's fees to `fees_collected` and record its last trade price."""
        fees = self.fees_collected
        fees[market.quote] = fees.get(market.quote, 0) + self._walk_fees
        self.last_prices[market.symbol] = self._walk_price
        self._walk_fills = 0
        self._walk_fees = 0

    def _decremented(self, order: Order, acct: Account, market: Market, maker: bool) -> None:
        """After self-trade prevention shrank an order: close a spent maker, else release.

        A spent taker is closed by `_execute` when matching reports it stopped.
        """
        if order.qty == order.filled:
            if maker:
                self._close(order, EXPIRE_IN_MATCH, SELF_TRADE)
            return
        self._release_excess(order, acct, market)
        self._amended(order, kept_priority=True)

    def _need(self, order: Order, market: Market) -> int:
        """The hold an open order still needs for what remains of it."""
        remaining = order.qty - order.filled
        if order.side is SELL:
            return remaining * market.lot_units
        if order.type in _LIMIT_TYPES:
            notional = order.price * remaining * market.notional_units
            return notional + hold_fee(notional, order.hold_bps)
        return order.locked

    def _release_excess(self, order: Order, acct: Account, market: Market) -> None:
        excess = order.locked - self._need(order, market)
        if excess > 0:
            asset = market.quote if order.side is BUY else market.base
            bal = order.hold_bal or acct.balances[asset]
            bal.free += excess
            bal.locked -= excess
            order.locked -= excess
            self._touch(bal)
        elif excess < 0:
            raise InvariantError(f"Invariant: order {order.order_id} holds less than it needs")

    def _finish(self, order: Order, acct: Account) -> None:
        """Forget a closed order of `acct`: release what it still holds, drop it from indexes."""
        if order.locked:
            bal = order.hold_bal
            if bal is None:
                market = self.markets.get(order.symbol) or self._market_of(order.symbol)
                if market is None:
                    raise InvariantError(f"Invariant: order {order.order_id} of an unknown symbol")
                bal = acct.balances[market.quote if order.side is BUY else market.base]
            bal.free += order.locked
            bal.locked -= order.locked
            order.locked = 0
            self._touch(bal)
        oid = order.key
        del self.orders[oid]
        del acct.open_orders[oid]
        if order.client_order_id:
            self.client_ids.pop((order.account, order.client_order_id), None)

    def _close(self, order: Order, step: Step, reason: CloseReason) -> None:
        """End an open order early (cancel or expiry), emitting its event."""
        symbol = order.symbol
        market, acct = order.market, order.acct
        if market is None or acct is None:
            raise InvariantError(f"Invariant: order {order.order_id} was never admitted")
        if order.live:
            book = market.book
            book.remove(order)
            if not book.queued:  # `_mark`, inlined
                book.queued = True
                self._dirty.append(book)
        elif not order.working:
            market.stops.discard(order.order_id, order.side, order.type, order.stop_price)
        # the lifecycle table's close rows, inlined for open orders (`advance` raises otherwise)
        status = order.status
        if status is NEW or status is PARTIALLY_FILLED:
            status = _CLOSED_BY[step]
        else:
            status = advance(status, step)  # raises: a closed order does not close again
        order.status = status
        self._finish(order, acct)
        event = _ORDER_CANCELED if step is CANCEL else _ORDER_EXPIRED
        self._events.append(
            event(
                order.key, order.account, symbol, order.client_order_id, reason,
                order.filled, status,
            )
        )

    def _run_stops(self, market: Market) -> None:
        """Trigger waiting stops at the last price, one at a time, until none triggers."""
        symbol, book, stops = market.symbol, market.book, market.stops
        while stops.above or stops.below:
            last = self.last_prices.get(symbol)
            if last is None:
                return
            oid = stops.pop_triggered(last)
            if oid is None:
                return
            order = self.orders[oid]
            order.working = True
            self._events.append(
                ev.OrderTriggered(
                    oid, order.account, symbol, order.client_order_id,
                    last,
                )
            )
            if _is_market(order.type) and not book.has_liquidity(order.side):
                self._close(order, EXPIRE, NO_LIQUIDITY)
            else:
                self._execute(order, market, self.accounts_[order.account])

    # -- cancel, amend, expire -------------------------------------------------------------

    def _find(
        self, account: int, symbol: str, order_id: int, client_order_id: str
    ) -> Order | None:
        """The caller's open order, or None after emitting the right rejection."""
        if symbol not in self.instruments_:
            self._reject(account, symbol, Reject.UNKNOWN_SYMBOL, "unknown symbol", client_order_id)
            return None
        if account not in self.accounts_:
            self._reject(
                account, symbol, Reject.UNKNOWN_ACCOUNT, "unknown account", client_order_id
            )
            return None
        if order_id:
            order = self.orders.get(order_id)
            issued = 0 < order_id < self.next_order_id
        elif client_order_id:
            found = self.client_ids.get((account, client_order_id))
            order = self.orders.get(found) if found is not None else None
            issued = False
        else:
            self._reject(
                account, symbol, Reject.INVALID_ORDER_PARAMETERS, "give an order id or client id"
            )
            return None
        if order is None or order.account != account or order.symbol != symbol:
            if issued and order is None:
                code, message = Reject.ORDER_NOT_OPEN, "order is not open"
            else:
                code, message = Reject.UNKNOWN_ORDER, "Unknown order sent."
            self._reject(account, symbol, code, message, client_order_id, order_id)
            return None
        return order

    def _cancel(self, c: CancelOrder, ts: int) -> None:
        account: int
        symbol: str
        given: int
        cid: str
        fields: tuple[Any, ...] = _ASTUPLE(c)
        account, symbol, given, cid = fields  # `_CANCEL_FIELDS` pins the order
        # the caller's own open order, found directly: `_find`'s checks would all pass
        key: Any = fields[2]  # the id as the command holds it: looked up without boxing
        if not given and cid:
            key = self.client_ids.get((account, cid), 0)
        order = self.orders.get(key)
        if order is None or order.account != account or order.symbol != symbol:
            order = self._find(account, symbol, given, cid)
            if order is None:
                return
        self._close(order, CANCEL, USER)

    def _cancel_all(self, c: cmd.CancelAllOrders, ts: int) -> None:
        acct = self.accounts_.get(c.account)
        if c.symbol not in self.instruments_:
            return self._reject(c.account, c.symbol, Reject.UNKNOWN_SYMBOL, "unknown symbol")
        if acct is None:
            return self._reject(c.account, c.symbol, Reject.UNKNOWN_ACCOUNT, "unknown account")
        for order in [o for o in acct.open_orders.values() if o.symbol == c.symbol]:
            self._close(order, CANCEL, CANCEL_ALL)
        return None

    def _amend_problem(
        self, order: Order, inst: Instrument, new_qty: int, new_price: int
    ) -> tuple[Reject, str] | None:
        """Why an amend to (`new_qty`, `new_price`) cannot apply, before any state changes."""
        if order.symbol in self.halted:
            return Reject.SYMBOL_HALTED, "trading halted"
        if not order.live:
            return Reject.INVALID_ORDER_PARAMETERS, "only resting limit orders amend"
        if new_qty == order.qty and new_price == order.price:
            return Reject.AMEND_NO_CHANGE, "amend changes nothing"
        problem = check_price(inst, new_price) or check_qty(inst, new_qty)
        if problem:
            return problem
        if new_qty <= order.filled:
            return Reject.AMEND_BELOW_FILLED, "new quantity must exceed the filled part"
        if inst.notional(new_price, new_qty) < inst.min_notional:
            return Reject.BELOW_MIN_NOTIONAL, "notional below the instrument's minimum"
        return None

    def _amend(self, c: cmd.AmendOrder, ts: int) -> None:
        order = self._find(c.account, c.symbol, c.order_id, c.client_order_id)
        if order is None:
            return None
        cid, symbol, order_id = order.client_order_id, order.symbol, order.order_id
        market = self._market_of(symbol)
        if market is None:
            raise InvariantError(f"Invariant: order {order_id} of an unknown symbol")
        new_qty = c.qty or order.qty
        new_price = c.price or order.price
        problem = self._amend_problem(order, market.inst, new_qty, new_price)
        if problem:
            return self._reject(c.account, symbol, problem[0], problem[1], cid, order_id)
        book = market.book
        acct = self.accounts_[order.account]
        if self.expiries and self.expiries[0][0] <= ts:
            self._expire_due(_EXPIRE, ts)
            if order_id not in self.orders:
                return None
        if new_price == order.price and new_qty < order.qty:
            book.reduce(order, order.qty - new_qty)
            self._mark(book)
            self._release_excess(order, acct, market)
            self._amended(order, kept_priority=True)
            return None
        # cancel-replace: a fresh record takes the old one's identity and loses priority
        replacement = Order(
            order_id, order.account, symbol, order.side, order.type, new_qty, new_price,
            order.tif, 0, order.stop_price, order.expire_ts, order.post_only, order.visible_qty,
            order.stp, cid,
        )
        replacement.key = order.key
        replacement.acct = acct
        replacement.market = market
        replacement.recv_bal = order.recv_bal
        replacement.filled = order.filled
        replacement.status = order.status
        replacement.hold_bps = order.hold_bps
        replacement.locked = self._need(replacement, market)
        bal = acct.balances[market.quote if order.side is BUY else market.base]
        replacement.hold_bal = bal
        if bal.free + order.locked < replacement.locked:
            return self._reject(
                c.account, symbol, Reject.INSUFFICIENT_FUNDS,
                "Account has insufficient balance for requested action.", cid, order_id,
            )
        if order.post_only and new_price != order.price and book.crosses(order.side, new_price):
            return self._reject(
                c.account, symbol, Reject.POST_ONLY_WOULD_TAKE, "post-only order would take",
                cid, order_id,
            )
        book.remove(order)
        self._mark(book)
        bal.free += order.locked - replacement.locked
        bal.locked += replacement.locked - order.locked
        self._touch(bal)
        self.orders[order.key] = replacement
        acct.open_orders[order.key] = replacement
        self._amended(replacement, kept_priority=False)
        self._execute(replacement, market, acct)
        self._run_stops(market)
        return None

    def _amended(self, order: Order, kept_priority: bool) -> None:
        self._events.append(
            ev.OrderAmended(
                order.order_id, order.account, order.symbol,
                order.client_order_id, order.qty, order.price, order.filled,
                kept_priority,
            )
        )

    def _expire_due(self, c: cmd.ExpireOrders, ts: int) -> None:
        heap = self.expiries
        while heap and heap[0][0] <= ts:
            expire_ts, oid = heappop(heap)
            order = self.orders.get(oid)
            if order is not None and order.expire_ts == expire_ts:
                self._close(order, EXPIRE, GTD_EXPIRED)

    # -- admin -----------------------------------------------------------------------------

    def _create_account(self, c: cmd.CreateAccount, ts: int) -> None:
        if c.account in self.accounts_ or c.account <= 0:
            return self._reject(c.account, "", Reject.ACCOUNT_EXISTS, "account exists or invalid")
        if not valid_fees(c.maker_fee_bps, c.taker_fee_bps):
            return self._reject(c.account, "", Reject.INVALID_FEES, "fees out of range")
        self.accounts_[c.account] = Account(c.account, c.maker_fee_bps, c.taker_fee_bps)
        self._events.append(ev.AccountCreated(c.account, c.maker_fee_bps, c.taker_fee_bps))
        return None

    def _set_fees(self, c: cmd.SetFees, ts: int) -> None:
        acct = self.accounts_.get(c.account)
        if acct is None:
            return self._reject(c.account, "", Reject.UNKNOWN_ACCOUNT, "unknown account")
        if not valid_fees(c.maker_fee_bps, c.taker_fee_bps):
            return self._reject(c.account, "", Reject.INVALID_FEES, "fees out of range")
        acct.maker_bps, acct.taker_bps = c.maker_fee_bps, c.taker_fee_bps
        self._events.append(ev.FeesChanged(c.account, c.maker_fee_bps, c.taker_fee_bps))
        return None

    def _funds_check(self, c: cmd.Deposit | cmd.Withdraw) -> Account | None:
        acct = self.accounts_.get(c.account)
        if acct is None:
            self._reject(c.account, "", Reject.UNKNOWN_ACCOUNT, "unknown account")
        elif c.asset not in self.assets_:
            self._reject(c.account, "", Reject.UNKNOWN_ASSET, "unknown asset")
        elif c.amount <= 0:
            self._reject(c.account, "", Reject.INVALID_AMOUNT, "amount must be positive")
        elif not c.tx_id:
            self._reject(c.account, "", Reject.INVALID_AMOUNT, "a transaction id is required")
        elif c.tx_id in self.tx_ids:
            self._reject(c.account, "", Reject.DUPLICATE_TRANSACTION, "transaction already applied")
        else:
            return acct
        return None

    def _deposit(self, c: cmd.Deposit, ts: int) -> None:
        acct = self._funds_check(c)
        if acct is None:
            return
        held = acct.balances.get(c.asset)
        if (held.free + held.locked if held else 0) + c.amount > MAX_BALANCE:
            self._reject(c.account, "", Reject.INVALID_AMOUNT, "balance would exceed 2**62 units")
            return
        bal = acct.balance(c.asset)
        self.tx_ids.add(c.tx_id)
        bal.free += c.amount
        self.deposited[c.asset] = self.deposited.get(c.asset, 0) + c.amount
        self._touch(bal)
        self._events.append(ev.FundsDeposited(c.account, c.asset, c.amount, c.tx_id))

    def _withdraw(self, c: cmd.Withdraw, ts: int) -> None:
        acct = self._funds_check(c)
        if acct is None:
            return
        bal = acct.balances.get(c.asset)
        if bal is None or bal.free < c.amount:
            self._reject(
                c.account, "", Reject.INSUFFICIENT_FUNDS,
                "Account has insufficient balance for requested action.",
            )
            return
        self.tx_ids.add(c.tx_id)
        bal.free -= c.amount
        self.withdrawn[c.asset] = self.withdrawn.get(c.asset, 0) + c.amount
        self._touch(bal)
        self._events.append(ev.FundsWithdrawn(c.account, c.asset, c.amount, c.tx_id))

    def _add_asset(self, c: cmd.AddAsset, ts: int) -> None:
        asset = c.asset
        if asset.code in self.assets_:
            return self._reject(0, "", Reject.ASSET_EXISTS, f"asset {asset.code} exists")
        if not asset.code or not 0 <= asset.precision <= 18:
            return self._reject(0, "", Reject.INVALID_INSTRUMENT, "asset precision must be 0-18")
        self.assets_[asset.code] = asset
        self._events.append(ev.AssetAdded(asset))
        return None

    def _add_instrument(self, c: cmd.AddInstrument, ts: int) -> None:
        inst = c.instrument
        symbol = inst.symbol
        if symbol in self.instruments_:
            return self._reject(0, symbol, Reject.SYMBOL_EXISTS, f"symbol {symbol} exists")
        base, quote = self.assets_.get(inst.base), self.assets_.get(inst.quote)
        if base is None or quote is None:
            return self._reject(0, symbol, Reject.UNKNOWN_ASSET, "unknown base or quote asset")
        if (
            base.precision != inst.base_precision
            or quote.precision != inst.quote_precision
            or inst.lot_units <= 0
            or inst.notional_units <= 0
            or not 0 < inst.min_price <= inst.max_price
            or not 0 < inst.min_qty <= inst.max_qty
        ):
            return self._reject(0, symbol, Reject.INVALID_INSTRUMENT, "inconsistent instrument")
        self.instruments_[symbol] = inst
        self.books[symbol] = Book(symbol)
        self.stops[symbol] = StopBook()
        self._events.append(ev.InstrumentAdded(inst))
        return None

    def _halt(self, c: cmd.HaltTrading, ts: int) -> None:
        if c.symbol not in self.instruments_:
            return self._reject(0, c.symbol, Reject.UNKNOWN_SYMBOL, "unknown symbol")
        self.halted.add(c.symbol)
        market = self._market_of(c.symbol)
        if market is not None:
            market.halted = True
        self._events.append(ev.TradingHalted(c.symbol))
        return None

    def _resume(self, c: cmd.ResumeTrading, ts: int) -> None:
        if c.symbol not in self.instruments_:
            return self._reject(0, c.symbol, Reject.UNKNOWN_SYMBOL, "unknown symbol")
        self.halted.discard(c.symbol)
        market = self._market_of(c.symbol)
        if market is not None:
            market.halted = False
        self._events.append(ev.TradingResumed(c.symbol))
        return None

    def _create_api_key(self, c: cmd.CreateApiKey, ts: int) -> None:
        problem = check_create(c, self.api_keys_, self.accounts_)
        if problem:
            return self._reject(c.account, "", *problem)
        self.api_keys_[c.key] = ApiKey(c.key, c.secret, c.account, c.permissions, c.label, ts)
        self._events.append(ev.ApiKeyCreated(c.key, c.account, c.permissions, c.label))
        return None

    def _revoke_api_key(self, c: cmd.RevokeApiKey, ts: int) -> None:
        key = self.api_keys_.get(c.key)
        if key is None or key.revoked:
            return self._reject(0, "", Reject.UNKNOWN_API_KEY, "unknown or revoked key")
        self.api_keys_[c.key] = msgspec.structs.replace(key, revoked=True)
        self._events.append(ev.ApiKeyRevoked(c.key, key.account))
        return None

    # -- queries ---------------------------------------------------------------------------

    def api_keys(self) -> list[ApiKey]:
        """Every key ever created (revoked ones flagged), in creation order."""
        return list(self.api_keys_.values())

    def instrument(self, symbol: str) -> Instrument | None:
        return self.instruments_.get(symbol)

    def instruments(self) -> list[Instrument]:
        return list(self.instruments_.values())

    def assets(self) -> list[Asset]:
        return list(self.assets_.values())

    def accounts(self) -> list[int]:
        return sorted(self.accounts_)

    def fees(self, account: int) -> tuple[int, int] | None:
        acct = self.accounts_.get(account)
        return None if acct is None else (acct.maker_bps, acct.taker_bps)

    def is_halted(self, symbol: str) -> bool:
        return symbol in self.halted

    def last_price(self, symbol: str) -> int | None:
        return self.last_prices.get(symbol)

    def depth(
        self, symbol: str, limit: int = 100
    ) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        """(bids, asks), best first, as (price, shown qty, order count)."""
        book = self.books[symbol]
        return book.depth(BUY, limit), book.depth(SELL, limit)

    def best_bid_ask(self, symbol: str) -> tuple[int | None, int | None]:
        book = self.books[symbol]
        return book.best_bid(), book.best_ask()

    def orders_at(self, symbol: str, side: Side, price: int) -> list[OrderView]:
        book = self.books[symbol]
        level = book.level_at(side, price)
        return [] if level is None else [OrderView.of(o) for o in level.orders()]

    def order(self, order_id: int) -> OrderView | None:
        order = self.orders.get(order_id)
        return None if order is None else OrderView.of(order)

    def open_orders(self, account: int, symbol: str | None = None) -> list[OrderView]:
        acct = self.accounts_.get(account)
        if acct is None:
            return []
        return [
            OrderView.of(o)
            for o in acct.open_orders.values()
            if symbol is None or o.symbol == symbol
        ]

    def balances(self, account: int) -> dict[str, tuple[int, int]]:
        acct = self.accounts_.get(account)
        if acct is None:
            return {}
        return {asset: (b.free, b.locked) for asset, b in sorted(acct.balances.items())}

    def next_expiry(self) -> int | None:
        heap = self.expiries
        while heap:
            expire_ts, oid = heap[0]
            order = self.orders.get(oid)
            if order is not None and order.expire_ts == expire_ts:
                return expire_ts
            heappop(heap)
        return None

    # -- state -------------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The whole state as bytes; `Exchange.restore` rebuilds it exactly."""
        return snapshot.take(self)

    @classmethod
    def restore(cls, data: bytes) -> Exchange:
        exchange = cls()
        snapshot.load(exchange, data)
        return exchange

    def state_hash(self) -> str:
        """Digest of the canonical state (the last seq excluded, so rejections keep it)."""
        return snapshot.digest(self)

    def check_invariants(self) -> None:
        invariants.check(self)

