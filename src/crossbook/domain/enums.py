"""Small closed sets: sides, order types, time in force, self-trade prevention, statuses.

All are `IntEnum` so that they encode as one small integer in the journal and on the wire.
Values are part of the journal format: append new members, never renumber.
"""

from enum import IntEnum, IntFlag


class Side(IntEnum):
    BUY = 1
    SELL = 2

    @property
    def opposite(self) -> "Side":
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(IntEnum):
    LIMIT = 1
    MARKET = 2
    STOP_LOSS = 3
    """Market order placed when the last trade price reaches the stop price (adverse move)."""
    STOP_LOSS_LIMIT = 4
    TAKE_PROFIT = 5
    """Market order placed when the last trade price reaches the stop price (favourable move)."""
    TAKE_PROFIT_LIMIT = 6

    # Compared as plain integers: reading a member through its class and hashing a member
    # are Python-level calls, and these properties sit on every order path.

    @property
    def is_stop(self) -> bool:
        return self >= 3  # STOP_LOSS and after

    @property
    def is_market(self) -> bool:
        return self in MARKET_TYPES


MARKET_TYPES = (2, 3, 5)
"""The order types that execute at market (MARKET, STOP_LOSS, TAKE_PROFIT), as plain ints:
`type in MARKET_TYPES` is `type.is_market` without the property call on a hot path."""


class TimeInForce(IntEnum):
    GTC = 1
    IOC = 2
    FOK = 3
    GTD = 4


class StpMode(IntEnum):
    """Self-trade prevention, decided by the taker's mode."""

    NONE = 0
    EXPIRE_TAKER = 1
    EXPIRE_MAKER = 2
    EXPIRE_BOTH = 3
    DECREMENT = 4


class OrderStatus(IntEnum):
    NEW = 1
    PARTIALLY_FILLED = 2
    FILLED = 3
    CANCELED = 4
    REJECTED = 5
    EXPIRED = 6
    EXPIRED_IN_MATCH = 7

    @property
    def is_open(self) -> bool:
        return self <= 2  # NEW or PARTIALLY_FILLED (an integer compare, see OrderType)


class CloseReason(IntEnum):
    """Why an order left the book without filling completely."""

    USER = 1
    CANCEL_ALL = 2
    IOC_REMAINDER = 3
    FOK_UNFILLED = 4
    GTD_EXPIRED = 5
    SELF_TRADE = 6
    NO_LIQUIDITY = 7
    INSUFFICIENT_FUNDS = 8
    POST_ONLY_WOULD_TAKE = 9
    ADMIN = 10


class Liquidity(IntEnum):
    MAKER = 1
    TAKER = 2


class Permission(IntFlag):
    """What an API key may do. Stored as an int in `CreateApiKey.permissions`."""

    READ = 1
    TRADE = 2
    ADMIN = 4
