"""Reject codes, namespaced by the stage that refused the command.

Ranges: 1xxx validation (the command is malformed for this instrument), 2xxx risk (funds and
limits), 3xxx matching (the book's state refuses it), 4xxx admin, 10xxx gateway (decoding,
authentication, throttling; never produced by the engine). Values are stable wire codes:
add members, never renumber.
"""

from enum import IntEnum


class Reject(IntEnum):
    # validation
    UNKNOWN_SYMBOL = 1001
    UNKNOWN_ACCOUNT = 1002
    INVALID_QUANTITY = 1003
    INVALID_PRICE = 1004
    PRICE_OUT_OF_BOUNDS = 1005
    QUANTITY_OUT_OF_BOUNDS = 1006
    BELOW_MIN_NOTIONAL = 1007
    INVALID_ORDER_PARAMETERS = 1008
    INVALID_EXPIRE_TIME = 1009
    INVALID_CLIENT_ORDER_ID = 1010
    UNKNOWN_ASSET = 1011
    INVALID_AMOUNT = 1012
    # risk
    INSUFFICIENT_FUNDS = 2001
    # matching
    SYMBOL_HALTED = 3001
    UNKNOWN_ORDER = 3002
    ORDER_NOT_OPEN = 3003
    DUPLICATE_CLIENT_ORDER_ID = 3004
    POST_ONLY_WOULD_TAKE = 3005
    FOK_CANNOT_FILL = 3006
    NO_LIQUIDITY = 3007
    STOP_WOULD_TRIGGER_IMMEDIATELY = 3008
    AMEND_NO_CHANGE = 3009
    AMEND_BELOW_FILLED = 3010
    # admin
    ACCOUNT_EXISTS = 4001
    ASSET_EXISTS = 4002
    SYMBOL_EXISTS = 4003
    DUPLICATE_TRANSACTION = 4004
    INVALID_FEES = 4005
    INVALID_INSTRUMENT = 4006
    API_KEY_EXISTS = 4007
    UNKNOWN_API_KEY = 4008
    INVALID_API_KEY = 4009
    # gateway
    GATEWAY_THROTTLED = 10001
    GATEWAY_UNAVAILABLE = 10002
    GATEWAY_BAD_REQUEST = 10003
    GATEWAY_UNAUTHORIZED = 10004
    GATEWAY_FORBIDDEN = 10005
    GATEWAY_NOT_FOUND = 10006
    GATEWAY_RATE_LIMITED = 10007

    @property
    def stage(self) -> str:
        return _STAGES[self.value // 1000]


_STAGES = {1: "validation", 2: "risk", 3: "matching", 4: "admin", 10: "gateway"}
