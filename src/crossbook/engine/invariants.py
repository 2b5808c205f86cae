"""`check(exchange)`: the invariants that must hold between any two commands.

- Books: levels sorted by price, one per price; never crossed; each level's `qty`,
  `hidden` and `count` equal the sums over its live orders; every resting order is open,
  working, registered, and shows 0 < shown <= remaining.
- Orders: the open-order index, the accounts' open orders and the client-id index agree.
- Holds: per account and asset, `locked` equals what that account's open orders hold.
- Conservation: per asset, sum of free + locked + fees collected = deposits - withdrawals.
- No balance is negative.

A failure raises `InvariantError`: a bug, never a business outcome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crossbook.domain.enums import Side
from crossbook.engine.lifecycle import InvariantError

if TYPE_CHECKING:
    from crossbook.engine.book import Book
    from crossbook.engine.exchange import Exchange


def _fail(message: str) -> None:
    raise InvariantError(f"Invariant: {message}")


def _check_book(ex: Exchange, book: Book) -> int:
    live = 0
    for side, levels in ((Side.BUY, book.bid_levels), (Side.SELL, book.ask_levels)):
        prices = [level.price for level in levels]
        if prices != sorted(set(prices)):
            _fail(f"{book.symbol} {side.name} levels out of order or repeating a price")
        for level in levels:
            price = level.price
            orders = level.orders()
            if level.count != len(orders) or not orders:
                _fail(f"{book.symbol} level {price} count {level.count} != {len(orders)}")
            if level.qty != sum(o.shown for o in orders):
                _fail(f"{book.symbol} level {price} qty differs from its orders")
            if level.hidden != sum(o.qty - o.filled - o.shown for o in orders):
                _fail(f"{book.symbol} level {price} hidden differs from its orders")
            for o in orders:
                if ex.orders.get(o.order_id) is not o or not o.status.is_open or not o.working:
                    _fail(f"resting order {o.order_id} not registered as open and working")
                if (
                    not 0 < o.shown <= o.qty - o.filled
                    or o.price != price
                    or o.side is not side
                    or o.level is not level
                ):
                    _fail(f"resting order {o.order_id} misplaced or shows {o.shown}")
            live += len(orders)
    best_bid, best_ask = book.best_bid(), book.best_ask()
    if best_bid is not None and best_ask is not None and best_bid >= best_ask:
        _fail(f"{book.symbol} crossed: {best_bid} >= {best_ask}")
    return live


def check(ex: Exchange) -> None:
    resting = sum(_check_book(ex, book) for book in ex.books.values())
    waiting = sum(len(s.above) + len(s.below) for s in ex.stops.values())
    if resting + waiting != len(ex.orders):
        _fail(f"{len(ex.orders)} open orders but {resting} resting + {waiting} waiting")
    held: dict[tuple[int, str], int] = {}
    for o in ex.orders.values():
        if ex.accounts_[o.account].open_orders.get(o.order_id) is not o:
            _fail(f"order {o.order_id} missing from its account")
        if o.client_order_id and ex.client_ids.get((o.account, o.client_order_id)) != o.order_id:
            _fail(f"order {o.order_id} missing from the client id index")
        inst = ex.instruments_[o.symbol]
        asset = inst.quote if o.side is Side.BUY else inst.base
        held[o.account, asset] = held.get((o.account, asset), 0) + o.locked
    if len(ex.client_ids) != sum(1 for o in ex.orders.values() if o.client_order_id):
        _fail("client id index holds closed orders")
    totals: dict[str, int] = {}
    for acct in ex.accounts_.values():
        owned = sum(1 for o in ex.orders.values() if o.account == acct.account_id)
        if len(acct.open_orders) != owned:
            _fail(f"account {acct.account_id} lists orders that are not open")
        for asset, bal in acct.balances.items():
            free, locked = bal.free, bal.locked
            if free < 0 or locked < 0:
                _fail(f"account {acct.account_id} {asset} negative: {free}/{locked}")
            if locked != held.get((acct.account_id, asset), 0):
                _fail(
                    f"account {acct.account_id} {asset} locked {locked} != held "
                    f"{held.get((acct.account_id, asset), 0)}"
                )
            totals[asset] = totals.get(asset, 0) + free + locked
    for asset in set(totals) | set(ex.deposited) | set(ex.fees_collected):
        have = totals.get(asset, 0) + ex.fees_collected.get(asset, 0)
        want = ex.deposited.get(asset, 0) - ex.withdrawn.get(asset, 0)
        if have != want:
            _fail(f"{asset} not conserved: balances + fees {have} != net deposits {want}")
