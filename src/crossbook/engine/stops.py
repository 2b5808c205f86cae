"""Waiting stop and take-profit orders of one symbol, ordered by when they trigger.

Direction: a buy stop-loss and a sell take-profit trigger when the last trade price rises to
their stop (`above`, stop <= last); a sell stop-loss and a buy take-profit when it falls to it
(`below`, stop >= last).

Deterministic order: on a rise, the lowest stop first; on a fall, the highest stop first;
equal stops by order id. `above` keys are `(stop, order_id)` popped from the front, `below`
keys `(stop, -order_id)` popped from the back. Within one check `above` goes first.
"""

from __future__ import annotations

from bisect import bisect_left, insort

from crossbook.domain.enums import OrderType, Side


def rises_to_trigger(side: Side, order_type: OrderType) -> bool:
    stop_loss = order_type in (OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT)
    return stop_loss == (side is Side.BUY)


def would_trigger(side: Side, order_type: OrderType, stop: int, last: int) -> bool:
    return last >= stop if rises_to_trigger(side, order_type) else last <= stop


class StopBook:
    __slots__ = ("above", "below")

    def __init__(self) -> None:
        self.above: list[tuple[int, int]] = []
        self.below: list[tuple[int, int]] = []

    def add(self, order_id: int, side: Side, order_type: OrderType, stop: int) -> None:
        if rises_to_trigger(side, order_type):
            insort(self.above, (stop, order_id))
        else:
            insort(self.below, (stop, -order_id))

    def discard(self, order_id: int, side: Side, order_type: OrderType, stop: int) -> None:
        keys, key = (
            (self.above, (stop, order_id))
            if rises_to_trigger(side, order_type)
            else (self.below, (stop, -order_id))
        )
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            del keys[i]

    def pop_triggered(self, last: int) -> int | None:
        """The next order id to trigger at `last`, removed; None when nothing triggers."""
        if self.above and self.above[0][0] <= last:
            return self.above.pop(0)[1]
        if self.below and self.below[-1][0] >= last:
            return -self.below.pop()[1]
        return None

    def order_ids(self) -> list[int]:
        """Waiting orders in trigger-list order (above, then below)."""
        return [oid for _, oid in self.above] + [-noid for _, noid in self.below]
