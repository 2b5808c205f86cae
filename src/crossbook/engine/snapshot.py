"""Snapshot and restore of the whole exchange state, and its state hash.

The snapshot is canonical: assets, instruments, accounts and balances sorted by key; orders
of each book in priority order (bids best first, then asks best first, each level FIFO),
then waiting stops in trigger order. Two exchanges in the same state therefore encode to the
same bytes, and `digest` is a BLAKE2b-256 of that encoding without the last sequence number.
The format is a versioned msgspec struct: fields are appended with defaults, never changed.
"""

from __future__ import annotations

import hashlib
from heapq import heapify
from typing import TYPE_CHECKING

import msgspec

from crossbook.domain.enums import OrderStatus, OrderType, Side, StpMode, TimeInForce
from crossbook.domain.instruments import Asset, Instrument
from crossbook.engine.access import ApiKey
from crossbook.engine.accounts import Account, Balance
from crossbook.engine.book import Book
from crossbook.engine.level import Level
from crossbook.engine.order import Order
from crossbook.engine.stops import StopBook

if TYPE_CHECKING:
    from crossbook.engine.exchange import Exchange

FORMAT_VERSION = 1


class OrderState(msgspec.Struct, array_like=True, frozen=True):
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
    filled: int
    quote_spent: int
    shown: int
    locked: int
    hold_bps: int
    status: OrderStatus
    working: bool


class AccountState(msgspec.Struct, array_like=True, frozen=True):
    account: int
    maker_bps: int
    taker_bps: int
    balances: list[tuple[str, int, int]]


class BookState(msgspec.Struct, array_like=True, frozen=True):
    symbol: str
    update_id: int
    last_price: int
    resting: list[OrderState]
    """Bids best first then asks best first, each level in queue order."""
    waiting: list[OrderState]
    """Stops in trigger-list order."""


class ExchangeState(msgspec.Struct, array_like=True, frozen=True):
    version: int
    assets: list[Asset]
    instruments: list[Instrument]
    halted: list[str]
    accounts: list[AccountState]
    books: list[BookState]
    fees_collected: list[tuple[str, int]]
    deposited: list[tuple[str, int]]
    withdrawn: list[tuple[str, int]]
    tx_ids: list[str]
    next_order_id: int
    next_trade_id: int
    api_keys: list[ApiKey] = msgspec.field(default_factory=list)
    """Sorted by key; revoked keys stay so that a key is never reissued."""


class Snapshot(msgspec.Struct, array_like=True, frozen=True):
    last_seq: int
    state: ExchangeState


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Snapshot)


def _order_state(o: Order) -> OrderState:
    return OrderState(
        o.order_id, o.account, o.symbol, o.side, o.type, o.qty, o.price, o.tif, o.quote_qty,
        o.stop_price, o.expire_ts, o.post_only, o.visible_qty, o.stp, o.client_order_id,
        o.filled, o.quote_spent, o.shown, o.locked, o.hold_bps, o.status, o.working,
    )


def _book_state(ex: Exchange, symbol: str) -> BookState:
    book = ex.books[symbol]
    resting = [
        _order_state(o) for level in reversed(book.bid_levels) for o in level.orders()
    ] + [_order_state(o) for level in book.ask_levels for o in level.orders()]
    waiting = [_order_state(ex.orders[oid]) for oid in ex.stops[symbol].order_ids()]
    return BookState(
        symbol, book.update_id, ex.last_prices.get(symbol, 0), resting, waiting
    )


def capture(ex: Exchange) -> ExchangeState:
    return ExchangeState(
        version=FORMAT_VERSION,
        assets=[ex.assets_[k] for k in sorted(ex.assets_)],
        instruments=[ex.instruments_[k] for k in sorted(ex.instruments_)],
        halted=sorted(ex.halted),
        accounts=[
            AccountState(
                a.account_id, a.maker_bps, a.taker_bps,
                [(asset, b.free, b.locked) for asset, b in sorted(a.balances.items())],
            )
            for _, a in sorted(ex.accounts_.items())
        ],
        books=[_book_state(ex, s) for s in sorted(ex.books)],
        fees_collected=sorted(ex.fees_collected.items()),
        deposited=sorted(ex.deposited.items()),
        withdrawn=sorted(ex.withdrawn.items()),
        tx_ids=sorted(ex.tx_ids),
        next_order_id=ex.next_order_id,
        next_trade_id=ex.next_trade_id,
        api_keys=[ex.api_keys_[k] for k in sorted(ex.api_keys_)],
    )


def take(ex: Exchange) -> bytes:
    return _encoder.encode(Snapshot(ex.last_seq, capture(ex)))


def digest(ex: Exchange) -> str:
    return hashlib.blake2b(_encoder.encode(capture(ex)), digest_size=32).hexdigest()


def _order(s: OrderState) -> Order:
    o = Order(
        s.order_id, s.account, s.symbol, s.side, s.type, s.qty, s.price, s.tif, s.quote_qty,
        s.stop_price, s.expire_ts, s.post_only, s.visible_qty, s.stp, s.client_order_id,
    )
    o.filled, o.quote_spent, o.shown = s.filled, s.quote_spent, s.shown
    o.locked, o.hold_bps, o.status, o.working = s.locked, s.hold_bps, s.status, s.working
    return o


def _price(level: Level) -> int:
    return level.price


def load(ex: Exchange, data: bytes) -> None:
    """Fill a fresh exchange from snapshot bytes."""
    snap = _decoder.decode(data)
    state = snap.state
    if state.version != FORMAT_VERSION:
        raise ValueError(f"snapshot format {state.version} is not supported")
    ex.last_seq = snap.last_seq
    ex.assets_ = {a.code: a for a in state.assets}
    for inst in state.instruments:
        ex.instruments_[inst.symbol] = inst
        ex.books[inst.symbol] = Book(inst.symbol)
        ex.stops[inst.symbol] = StopBook()
    ex.halted = set(state.halted)
    for a in state.accounts:
        acct = ex.accounts_[a.account] = Account(a.account, a.maker_bps, a.taker_bps)
        acct.balances = {
            asset: Balance(a.account, asset, free, locked) for asset, free, locked in a.balances
        }
    restored: list[Order] = []
    for b in state.books:
        book = ex.books[b.symbol]
        book.update_id = b.update_id
        if b.last_price:
            ex.last_prices[b.symbol] = b.last_price
        levels: dict[tuple[Side, int], Level] = {}
        for s in b.resting:
            order = _order(s)
            level = levels.get((order.side, order.price))
            if level is None:
                level = levels[order.side, order.price] = Level(order.price)
                (book.bid_levels if order.side is Side.BUY else book.ask_levels).append(level)
            level.append(order)
            restored.append(order)
        book.bid_levels.sort(key=_price)
        book.ask_levels.sort(key=_price)
        for s in b.waiting:
            order = _order(s)
            ex.stops[b.symbol].add(order.order_id, order.side, order.type, order.stop_price)
            restored.append(order)
    for order in sorted(restored, key=lambda o: o.order_id):
        acct = ex.accounts_[order.account]
        inst = ex.instruments_[order.symbol]
        order.hold_bal = acct.balances.get(inst.quote if order.side is Side.BUY else inst.base)
        order.recv_bal = acct.balances.get(inst.base if order.side is Side.BUY else inst.quote)
        order.acct = acct
        order.market = ex._market_of(order.symbol)
        ex.orders[order.key] = order
        acct.open_orders[order.key] = order
        if order.client_order_id:
            ex.client_ids[order.account, order.client_order_id] = order.order_id
        if order.tif is TimeInForce.GTD:
            ex.expiries.append((order.expire_ts, order.order_id))
    heapify(ex.expiries)
    ex.fees_collected = dict(state.fees_collected)
    ex.deposited = dict(state.deposited)
    ex.withdrawn = dict(state.withdrawn)
    ex.tx_ids = set(state.tx_ids)
    ex.next_order_id = state.next_order_id
    ex.next_trade_id = state.next_trade_id
    ex.api_keys_ = {k.key: k for k in state.api_keys}
