"""A price level: a FIFO queue of resting orders at one price.

Ordering invariant: orders trade in arrival order; an iceberg whose shown part is exhausted
goes to the back with a fresh shown part. The queue is a list read from `start`: taking the
head only moves `start` (the consumed prefix is cut off once it is at least half the list).
Removal from the middle is lazy: the order is marked not `live` and skipped when it reaches
the head; the queue is compacted when dead entries outnumber live ones, so memory stays
proportional to live orders.

Totals: `qty` is the sum of shown lots (what depth displays), `hidden` the iceberg reserve,
`count` the live orders. All O(1) to maintain. `dirty` marks a level already queued in its
book's list of levels changed by the current command. `key` is `price` as one Python int, made
once: depth changes report it without boxing again. A resting order holds its level
(`Order.level`, set by `append` and `Book.insert`, None again once it leaves: a dead entry
must not point back at its level, or an emptied level and its queue would form a cycle that
only the cyclic collector frees).
"""

from __future__ import annotations

from typing import Any

from crossbook.engine.order import Order


class Level:
    __slots__ = ("count", "dead", "dirty", "hidden", "key", "price", "qty", "queue", "start")

    def __init__(self, price: int) -> None:
        self.price = price
        self.key: Any = price
        self.queue: list[Order] = []
        self.start = 0
        self.qty = 0
        self.hidden = 0
        self.count = 0
        self.dead = 0
        self.dirty = False

    def append(self, order: Order) -> None:
        order.live = True
        order.level = self
        self.queue.append(order)
        self.qty += order.shown
        self.hidden += order.qty - order.filled - order.shown
        self.count += 1

    def head(self) -> Order:
        """The live order at the front; only call when `count > 0`."""
        queue = self.queue
        i = self.start
        order = queue[i]
        while not order.live:
            i += 1
            self.dead -= 1
            order = queue[i]
        self.start = i
        return order

    def pop_head(self) -> None:
        """Take the order `head` returned off the front of the queue."""
        i = self.start + 1
        if i >= 32 and 2 * i >= len(self.queue):
            del self.queue[:i]
            i = 0
        self.start = i

    def remove(self, order: Order) -> None:
        """Take a live order out of the queue (cancel, expiry, self-trade prevention)."""
        order.live = False
        order.level = None
        self.qty -= order.shown
        self.hidden -= order.qty - order.filled - order.shown
        self.count -= 1
        self.dead += 1
        if self.dead > 16 and self.dead > self.count:
            self.queue = [o for o in self.queue[self.start :] if o.live]
            self.start = 0
            self.dead = 0

    def orders(self) -> list[Order]:
        """Live orders in priority order."""
        return [o for o in self.queue[self.start :] if o.live]
