"""A price level: a FIFO queue of resting orders at one price.

Ordering invariant: orders trade in arrival order; an iceberg whose shown part is exhausted
goes to the back with a fresh shown part. Removal from the middle is lazy: the order is
marked not `live` and skipped when it reaches the head; the queue is compacted when dead
entries outnumber live ones, so memory stays proportional to live orders.

Totals: `qty` is the sum of shown lots (what depth displays), `hidden` the iceberg reserve,
`count` the live orders. All O(1) to maintain.
"""

from __future__ import annotations

from collections import deque

from crossbook.engine.order import Order


class Level:
    __slots__ = ("count", "dead", "hidden", "price", "qty", "queue")

    def __init__(self, price: int) -> None:
        self.price = price
        self.queue: deque[Order] = deque()
        self.qty = 0
        self.hidden = 0
        self.count = 0
        self.dead = 0

    def append(self, order: Order) -> None:
        order.live = True
        self.queue.append(order)
        self.qty += order.shown
        self.hidden += order.qty - order.filled - order.shown
        self.count += 1

    def head(self) -> Order:
        """The live order at the front; only call when `count > 0`."""
        queue = self.queue
        order = queue[0]
        while not order.live:
            queue.popleft()
            self.dead -= 1
            order = queue[0]
        return order

    def remove(self, order: Order) -> None:
        """Take a live order out of the queue (cancel, expiry, self-trade prevention)."""
        order.live = False
        self.qty -= order.shown
        self.hidden -= order.qty - order.filled - order.shown
        self.count -= 1
        self.dead += 1
        if self.dead > 16 and self.dead > self.count:
            self.queue = deque(o for o in self.queue if o.live)
            self.dead = 0

    def orders(self) -> list[Order]:
        """Live orders in priority order."""
        return [o for o in self.queue if o.live]
