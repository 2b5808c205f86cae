"""Binance error codes and bodies: `{"code": -xxxx, "msg": "..."}` with a 4xx status.

Contract:
- `binance_error(code, msg, status=400)` builds the `ApiError` a handler raises; its `code`
  is already the negative Binance code.
- `render` is the `/api/v3` error renderer (`Router.error_style`): negative codes pass
  through; crossbook codes raised by shared machinery (rate limits, a full inbox, 404/405,
  a stopped sequencer) are translated, keeping the status (429, 503, 404, ...).
- `from_reject(code, message, action)` maps an engine `Reject` to the code and message
  Binance clients expect (ccxt matches several messages exactly): filter failures are
  -1013 `Filter failure: PRICE_FILTER|LOT_SIZE|NOTIONAL`, funds -2010 `Account has
  insufficient balance for requested action.`, unknown orders -2011 on cancel and -2013 on
  query, an unknown symbol -1121.
"""

from __future__ import annotations

import msgspec

from crossbook.domain.rejects import Reject
from crossbook.gateway.http import JSON_HEADERS, ApiError, Response

INVALID_SYMBOL = "Invalid symbol."
INSUFFICIENT_BALANCE = "Account has insufficient balance for requested action."
UNKNOWN_ORDER_SENT = "Unknown order sent."
ORDER_DOES_NOT_EXIST = "Order does not exist."
PRICE_FILTER = "Filter failure: PRICE_FILTER"
LOT_SIZE = "Filter failure: LOT_SIZE"
MARKET_LOT_SIZE = "Filter failure: MARKET_LOT_SIZE"
NOTIONAL = "Filter failure: NOTIONAL"

_encode = msgspec.json.Encoder().encode


class ErrorBody(msgspec.Struct, frozen=True):
    code: int
    msg: str


def binance_error(code: int, msg: str, status: int = 400) -> ApiError:
    return ApiError(status, code, msg)


def missing(name: str) -> ApiError:
    return binance_error(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def illegal(name: str, legal: str) -> ApiError:
    return binance_error(
        -1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'."
    )


def invalid_symbol() -> ApiError:
    return binance_error(-1121, INVALID_SYMBOL)


# crossbook gateway codes raised by shared machinery -> Binance codes
_GATEWAY: dict[int, int] = {
    Reject.GATEWAY_RATE_LIMITED: -1003,
    Reject.GATEWAY_THROTTLED: -1008,
    Reject.GATEWAY_UNAVAILABLE: -1001,
    Reject.GATEWAY_UNAUTHORIZED: -2015,
    Reject.GATEWAY_FORBIDDEN: -2015,
    Reject.GATEWAY_BAD_REQUEST: -1100,
    Reject.GATEWAY_NOT_FOUND: -1000,
}


def render(error: ApiError) -> Response:
    code = error.code if error.code < 0 else _GATEWAY.get(error.code, -1000)
    body = _encode(ErrorBody(code, error.message))
    return Response(error.status, body, [*JSON_HEADERS, *error.headers])


_FILTERS: dict[int, str] = {
    Reject.INVALID_PRICE: PRICE_FILTER,
    Reject.PRICE_OUT_OF_BOUNDS: PRICE_FILTER,
    Reject.INVALID_QUANTITY: LOT_SIZE,
    Reject.QUANTITY_OUT_OF_BOUNDS: LOT_SIZE,
    Reject.BELOW_MIN_NOTIONAL: NOTIONAL,
}
_NEW_ORDER_REJECTED: dict[int, str] = {
    Reject.INSUFFICIENT_FUNDS: INSUFFICIENT_BALANCE,
    Reject.DUPLICATE_CLIENT_ORDER_ID: "Duplicate order sent.",
    Reject.POST_ONLY_WOULD_TAKE: "Order would immediately match and take.",
    Reject.STOP_WOULD_TRIGGER_IMMEDIATELY: "Stop price would trigger immediately.",
    Reject.NO_LIQUIDITY: "Order book liquidity is less than LOT_SIZE filter minimum quantity.",
    Reject.FOK_CANNOT_FILL: "Order could not be filled completely (FOK).",
    Reject.UNKNOWN_ACCOUNT: "This API key has no trading account.",
}


def from_reject(code: int, message: str, action: str = "place") -> ApiError:
    """The Binance error for an engine rejection of a `place`, `cancel` or `query`."""
    if code == Reject.UNKNOWN_SYMBOL:
        return invalid_symbol()
    if code in (Reject.UNKNOWN_ORDER, Reject.ORDER_NOT_OPEN):
        if action == "query":
            return binance_error(-2013, ORDER_DOES_NOT_EXIST)
        return binance_error(-2011, UNKNOWN_ORDER_SENT)
    if code == Reject.SYMBOL_HALTED:
        return binance_error(-1013, "Market is closed.")
    if code in _FILTERS:
        return binance_error(-1013, _FILTERS[code])
    if code == Reject.INVALID_CLIENT_ORDER_ID:
        return illegal("newClientOrderId", "^[\\.A-Z\\:/a-z0-9_-]{1,36}$")
    if code in _NEW_ORDER_REJECTED:
        return binance_error(-2010, _NEW_ORDER_REJECTED[code])
    if action == "cancel":
        return binance_error(-2011, f"{UNKNOWN_ORDER_SENT} ({message})")
    return binance_error(-1128, f"Combination of optional parameters invalid: {message}.")
