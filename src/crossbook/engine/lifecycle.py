"""The order lifecycle as a transition table.

Theory of operation: an order is born NEW (accepted; a stop order is NEW but not working
until its trigger). Fills move it to PARTIALLY_FILLED or FILLED; it may leave the book early
as CANCELED (by its owner or an operator), EXPIRED (time in force, GTD, no liquidity), or
EXPIRED_IN_MATCH (self-trade prevention). REJECTED never reaches an order: a rejected command
creates none, and the status exists for the gateways' reports. The engine changes statuses
only through `advance`, so an illegal move is a bug and raises.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

from crossbook.domain.enums import OrderStatus


class Step(IntEnum):
    PARTIAL_FILL = 1
    FILL = 2
    CANCEL = 3
    EXPIRE = 4
    EXPIRE_IN_MATCH = 5


class InvariantError(Exception):
    """A broken invariant: a bug. The node stops; restart recovers from the journal."""


_OPEN = (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)
_TARGET = {
    Step.PARTIAL_FILL: OrderStatus.PARTIALLY_FILLED,
    Step.FILL: OrderStatus.FILLED,
    Step.CANCEL: OrderStatus.CANCELED,
    Step.EXPIRE: OrderStatus.EXPIRED,
    Step.EXPIRE_IN_MATCH: OrderStatus.EXPIRED_IN_MATCH,
}

TRANSITIONS: Final[dict[tuple[OrderStatus, Step], OrderStatus]] = {
    (status, step): target for status in _OPEN for step, target in _TARGET.items()
}


def advance(status: OrderStatus, step: Step) -> OrderStatus:
    try:
        return TRANSITIONS[status, step]
    except KeyError:
        message = f"Invariant: no transition from {status.name} by {step.name}"
        raise InvariantError(message) from None
