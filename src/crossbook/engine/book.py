"""One symbol's order book: price levels per side, matching, and the queries over it.

Layout: `bid_levels`/`ask_levels` are each side's `Level`s sorted by price ascending (best
bid is the last, best ask the first); a resting order holds its level (`Order.level`). Finding
an order's price level on insertion is a bisect over the levels, O(log L), plus a memmove when
the price is new; a cancel goes straight to the order's level, and matching reads the best
level at the end of the list: no price is boxed or hashed on these paths.

Matching (`match`) walks the opposite side best price first and each level in FIFO order.
Trades happen at the resting order's price. It only moves quantities and queue positions and
reports each step, as it happens, to a `Reporter`'s `on_match(kind, maker, price, lots)`;
the exchange is that reporter and settles balances and writes events there (a method of a
class rather than a callable, so that mypyc calls it directly). Self-trade prevention is
decided by the taker's mode (see `StpMode`).

Known limitation: a book with hundreds of thousands of distinct prices pays the memmove on
level creation and removal; real books are far smaller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from crossbook.domain.enums import Side, StpMode
from crossbook.engine.level import Level
from crossbook.engine.order import Order

if TYPE_CHECKING:
    from mypy_extensions import i64  # a native 64-bit int under mypyc, a plain int otherwise

# Step kinds `match` reports.
FILL: Final = 0
"""(FILL, maker, price, qty): a trade."""
STP_EXPIRE_MAKER: Final = 1
"""(STP_EXPIRE_MAKER, maker, 0, 0): the maker left the book by self-trade prevention."""
STP_DECREMENT: Final = 2
"""(STP_DECREMENT, maker, 0, lots): both orders shrank by `lots` without trading."""

# Why `match` stopped early (0: it ran out of size, price or liquidity).
STOP_STP_TAKER: Final = 1
"""Self-trade prevention expires the taker's remainder."""
STOP_BUDGET: Final = 2
"""The taker cannot afford another lot at the next price."""

BUY: Final = Side.BUY
_UNLIMITED: Final = 1 << 62


def fee_of(notional: int, bps: int) -> int:
    """Fee on a notional, truncated toward zero (a rebate when `bps` is negative)."""
    if notional >= 0:
        # notional * bps split so every product stays small: mypyc multiplies inline only
        # non-negative operands below 2**30 and otherwise goes through Python int objects
        high = notional // 10000
        low = notional - high * 10000
        if bps >= 0:
            return high * bps + low * bps // 10000
        return -(high * -bps + low * -bps // 10000)
    if bps >= 0:
        return notional * bps // 10000
    return -(notional * -bps // 10000)


class Reporter:
    """Receives each step of `Book.match` as it happens; this base ignores them."""

    def on_match(self, kind: int, maker: Order, price: int, lots: int) -> None:
        """One step: `kind` is FILL, STP_EXPIRE_MAKER or STP_DECREMENT (see above)."""


class Book:
    __slots__ = (
        "ask_levels",
        "bid_levels",
        "dirty_asks",
        "dirty_bids",
        "queued",
        "symbol",
        "update_id",
    )

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bid_levels: list[Level] = []
        self.ask_levels: list[Level] = []
        self.update_id = 0
        self.dirty_bids: list[Level] = []
        """Bid levels changed since `take_changes` (each once: `Level.dirty`), maybe emptied."""
        self.dirty_asks: list[Level] = []
        self.queued = False
        """Whether the exchange has queued this book for the current command's depth event."""

    # -- resting orders ------------------------------------------------------------------

    def insert(self, order: Order) -> None:
        """Rest an order at the back of its price level."""
        price = order.price
        if order.side is BUY:
            levels, dirty = self.bid_levels, self.dirty_bids
        else:
            levels, dirty = self.ask_levels, self.dirty_asks
        i = _bisect_left(levels, price)
        if i < len(levels) and levels[i].price == price:
            level = levels[i]
        else:
            level = Level(price)
            levels.insert(i, level)
        remaining = order.qty - order.filled
        visible = order.visible_qty
        shown = visible if 0 < visible < remaining else remaining
        order.shown = shown
        # `Level.append`, inlined
        order.live = True
        order.level = level
        level.queue.append(order)
        level.qty += shown
        level.hidden += remaining - shown
        level.count += 1
        if not level.dirty:
            level.dirty = True
            dirty.append(level)

    def place(self, order: Order, reporter: Reporter) -> bool:
        """The book's own order entry: match `order` (sized in lots) up to its price, then rest
        what is left; with price 0 it is a market order and nothing rests. No caps, fees or
        holds (the exchange matches with those and decides itself what rests). Returns
        whether the order rests."""
        limit = order.price
        if not order.qty:
            raise ValueError(f"order {order.order_id} is not sized in lots")
        self.match(order, limit, reporter)
        if limit and order.filled < order.qty:
            self.insert(order)
            return True
        return False

    def cancel(self, order: Order) -> bool:
        """Take `order` out of the book if it still rests there; returns whether it did."""
        if not order.live:
            return False
        self.remove(order)
        return True

    def remove(self, order: Order) -> None:
        """Take a resting order out of the book."""
        level = order.level
        if level is None or not order.live:
            raise ValueError(f"order {order.order_id} does not rest in a book")
        level.remove(order)
        if not level.dirty:
            level.dirty = True
            (self.dirty_bids if order.side is BUY else self.dirty_asks).append(level)
        if not level.count:
            levels = self.bid_levels if order.side is BUY else self.ask_levels
            levels.pop(_bisect_left(levels, level.price))

    def reduce(self, order: Order, lots: int) -> None:
        """Shrink a resting order's total size in place, keeping its queue position."""
        level = order.level
        if level is None or not order.live:
            raise ValueError(f"order {order.order_id} does not rest in a book")
        _shrink(level, order, lots)
        if not level.dirty:
            level.dirty = True
            (self.dirty_bids if order.side is BUY else self.dirty_asks).append(level)

    # -- matching ------------------------------------------------------------------------

    def match(
        self,
        taker: Order,
        limit: int,
        reporter: Reporter,
        quote_cap: int = -1,
        cash_cap: int = -1,
        fee_bps: int = 0,
        notional_units: int = 1,
    ) -> int:
        """Match `taker` against the opposite side up to `limit` (0: no limit).

        `quote_cap` (or -1) caps the notional spent; `cash_cap` (or -1) caps notional plus
        taker fee at `fee_bps`; a notional is price x lots x `notional_units` (the quote units
        in one tick times one lot). Updates `taker.filled` and `taker.quote_spent`. Returns why
        it stopped early (`STOP_*`) or 0.
        """
        buy = taker.side is BUY
        if buy:
            levels, dirty = self.ask_levels, self.dirty_asks
        else:
            levels, dirty = self.bid_levels, self.dirty_bids
        account = taker.account
        stp = taker.stp
        rem = taker.qty - taker.filled if taker.qty else _UNLIMITED
        cash_spent = 0
        stop = 0
        while not stop and len(levels) > 0:  # `levels and ...` would be tested generically
            level = levels[0] if buy else levels[-1]
            best = level.price
            if limit and (best > limit if buy else best < limit):
                break
            unit = best * notional_units
            while level.count:
                maker = level.head()
                lots = rem if rem < maker.shown else maker.shown
                if quote_cap >= 0:
                    affordable = (quote_cap - taker.quote_spent) // unit
                    lots = min(lots, affordable)
                elif cash_cap >= 0:
                    # the full step is usually affordable: search only when it is not (the
                    # cost, notional plus fee, grows with the lots)
                    cost = unit * lots
                    if cost + fee_of(cost, fee_bps) > cash_cap - cash_spent:
                        affordable = _affordable(cash_cap - cash_spent, unit, fee_bps)
                        lots = min(lots, affordable)
                if lots <= 0:
                    # before self-trade prevention: a spent taker must not expire a maker
                    stop = STOP_BUDGET
                    break
                if stp and maker.account == account:
                    rem, stop = self._prevent_self_trade(taker, maker, level, rem, reporter)
                    if stop or not rem:
                        stop = stop or STOP_STP_TAKER
                        break
                    continue
                notional = unit * lots
                if not level.dirty:
                    level.dirty = True
                    dirty.append(level)
                if cash_cap >= 0:
                    cash_spent += notional + fee_of(notional, fee_bps)
                maker.filled += lots
                maker.shown -= lots
                level.qty -= lots
                taker.filled += lots
                taker.quote_spent += notional
                rem -= lots
                if not maker.shown:
                    left = maker.qty - maker.filled
                    level.pop_head()
                    if left:
                        refill = maker.visible_qty if maker.visible_qty < left else left
                        maker.shown = refill
                        level.qty += refill
                        level.hidden -= refill
                        level.queue.append(maker)
                    else:
                        maker.live = False
                        maker.level = None
                        level.count -= 1
                reporter.on_match(FILL, maker, best, lots)
                if not rem:
                    break
            if not level.count:
                levels.pop(0 if buy else -1)
            if not rem:
                break
        return stop

    def _prevent_self_trade(
        self, taker: Order, maker: Order, level: Level, rem: int, reporter: Reporter
    ) -> tuple[int, int]:
        stp = taker.stp
        if stp is StpMode.EXPIRE_TAKER:
            return rem, STOP_STP_TAKER
        if stp is StpMode.DECREMENT and not taker.qty:
            return rem, STOP_STP_TAKER
        # from here the maker's level changes
        if not level.dirty:
            level.dirty = True
            (self.dirty_bids if maker.side is BUY else self.dirty_asks).append(level)
        if stp is StpMode.EXPIRE_MAKER or stp is StpMode.EXPIRE_BOTH:
            level.remove(maker)
            reporter.on_match(STP_EXPIRE_MAKER, maker, 0, 0)
            return rem, STOP_STP_TAKER if stp is StpMode.EXPIRE_BOTH else 0
        # DECREMENT: both shrink by the smaller remainder (a quote-sized taker expired above)
        lots = min(rem, maker.qty - maker.filled)
        taker.qty -= lots
        if lots == maker.qty - maker.filled:
            level.remove(maker)
            maker.qty -= lots
        else:
            _shrink(level, maker, lots)
        reporter.on_match(STP_DECREMENT, maker, 0, lots)
        return rem - lots, 0

    # -- pre-trade questions (no mutation) --------------------------------------------------

    def crosses(self, side: Side, price: int) -> bool:
        """Would a limit order at `price` take liquidity right now?"""
        if side is BUY:
            return bool(self.ask_levels) and self.ask_levels[0].price <= price
        return bool(self.bid_levels) and self.bid_levels[-1].price >= price

    def has_liquidity(self, side: Side) -> bool:
        """Is there anything on the side a taker of `side` would hit?"""
        return bool(self.ask_levels if side is BUY else self.bid_levels)

    def fillable(self, taker: Order, limit: int, want: int) -> bool:
        """Could `want` lots fill now, up to `limit`, given the taker's self-trade mode?

        Unless its mode expires its own makers, a taker stops at its own order: it reaches
        only what is shown ahead of it in that level (an iceberg refills behind it).
        Walks only as many levels as it needs.
        """
        got = 0
        stp = taker.stp
        buy = taker.side is BUY
        levels = self.ask_levels if buy else self.bid_levels
        n = len(levels)
        for j in range(n):
            level = levels[j] if buy else levels[n - 1 - j]
            price = level.price
            if limit and (price > limit if buy else price < limit):
                break
            if not stp:
                got += level.qty + level.hidden
            else:
                hidden_ahead = 0
                for maker in level.orders():
                    if maker.account == taker.account:
                        if stp is StpMode.EXPIRE_MAKER:
                            continue
                        return got - hidden_ahead >= want
                    got += maker.qty - maker.filled
                    hidden_ahead += maker.qty - maker.filled - maker.shown
            if got >= want:
                return True
        return got >= want

    def walk_cost(self, side: Side, want: int, notional_units: int, skip_account: int = 0) -> int:
        """Notional of taking `want` lots now (or all there is, if less).

        Orders of `skip_account` are passed over, as a taker whose self-trade prevention
        expires its own makers passes over them. Walks only as many levels as it needs.
        """
        cost = 0
        buy = side is BUY
        levels = self.ask_levels if buy else self.bid_levels
        n = len(levels)
        for j in range(n):
            level = levels[j] if buy else levels[n - 1 - j]
            price = level.price
            if skip_account:
                available = sum(
                    o.qty - o.filled for o in level.orders() if o.account != skip_account
                )
            else:
                available = level.qty + level.hidden
            lots = want if want < available else available
            cost += lots * price * notional_units
            want -= lots
            if not want:
                break
        return cost

    # -- queries -------------------------------------------------------------------------

    def best_bid(self) -> int | None:
        return self.bid_levels[-1].price if self.bid_levels else None

    def best_ask(self) -> int | None:
        return self.ask_levels[0].price if self.ask_levels else None

    def level_at(self, side: Side, price: int) -> Level | None:
        """The level resting orders of `side` form at `price`, if any."""
        return _find(self.bid_levels if side is BUY else self.ask_levels, price)

    def depth(self, side: Side, limit: int) -> list[tuple[int, int, int]]:
        """Top `limit` levels of a side, best first, as (price, shown qty, order count)."""
        levels = self.bid_levels[::-1][:limit] if side is BUY else self.ask_levels[:limit]
        return [(lv.key, lv.qty, lv.count) for lv in levels]

    def take_changes(self) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        """The levels changed since the last call, as absolute (price, qty, count); resets."""
        bids, asks = self.dirty_bids, self.dirty_asks
        return (
            level_changes(bids, self.bid_levels, True) if bids else [],
            level_changes(asks, self.ask_levels, False) if asks else [],
        )

    def drop_changes(self) -> None:
        """Forget the changed levels without reporting them."""
        for level in self.dirty_bids:
            level.dirty = False
        for level in self.dirty_asks:
            level.dirty = False
        self.dirty_bids.clear()
        self.dirty_asks.clear()


def level_changes(
    dirty: list[Level], levels: list[Level], descending: bool
) -> list[tuple[int, int, int]]:
    """One side's levels in `dirty` as absolute (price, qty, count), best first; resets them.

    `levels` is that side of the book (`Book.bid_levels` or `Book.ask_levels`).
    """
    # most commands touch one level: its own totals are the answer (zero once emptied)
    if len(dirty) == 1:
        level = dirty[0]
        level.dirty = False
        dirty.clear()
        return [(level.key, level.qty, level.count) if level.count else (level.key, 0, 0)]
    # a walk lists the levels it reached best first, each once: when the list is in that
    # order already, report it as it is (a level still counting orders is the book's own)
    ordered = True
    prev = dirty[0].price
    for i in range(1, len(dirty)):
        price = dirty[i].price
        if price >= prev if descending else price <= prev:
            ordered = False
            break
        prev = price
    if ordered:
        out = [(lv.key, lv.qty, lv.count) if lv.count else (lv.key, 0, 0) for lv in dirty]
        for level in dirty:
            level.dirty = False
        dirty.clear()
        return out
    # an emptied level and a new one at the same price may both be listed: report the price
    # once, from the level that is in the book now
    prices = set()
    for level in dirty:
        level.dirty = False
        prices.add(level.price)
    dirty.clear()
    out = []
    for price in sorted(prices, reverse=descending):
        current = _find(levels, price)
        out.append((price, current.qty, current.count) if current is not None else (price, 0, 0))
    return out


def _bisect_left(levels: list[Level], price: int) -> int:
    """Where `price` goes in `levels` sorted by price (`bisect.bisect_left`, compiled natively)."""
    lo: i64 = 0
    hi: i64 = len(levels)
    while lo < hi:
        mid = (lo + hi) >> 1
        if levels[mid].price < price:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _find(levels: list[Level], price: int) -> Level | None:
    """The level at `price` in `levels` sorted by price, or None."""
    i = _bisect_left(levels, price)
    if i < len(levels) and levels[i].price == price:
        return levels[i]
    return None


def _shrink(level: Level, order: Order, lots: int) -> None:
    """Reduce a live order's total size by `lots` (less than its remainder), in place."""
    hidden_before = order.qty - order.filled - order.shown
    order.qty -= lots
    remaining = order.qty - order.filled
    if order.shown > remaining:
        level.qty -= order.shown - remaining
        order.shown = remaining
    level.hidden += remaining - order.shown - hidden_before


def _affordable(cash: int, unit: int, fee_bps: int) -> int:
    """Most lots at `unit` quote units each whose notional plus fee fits in `cash`."""
    if cash <= 0:
        return 0
    bps = fee_bps if fee_bps > 0 else 0
    lots = cash * 10000 // (unit * (10000 + bps))
    while (lots + 1) * unit + fee_of((lots + 1) * unit, fee_bps) <= cash:
        lots += 1
    while lots > 0 and lots * unit + fee_of(lots * unit, fee_bps) > cash:
        lots -= 1
    return lots
