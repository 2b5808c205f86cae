"""Binance request parameters and signatures.

Parameters (`Params.of(request)`): the query string and the body, the body parsed as
`application/x-www-form-urlencoded` whatever its Content-Type and for every method (DELETE
included; binance-connector sends JSON content types with an empty body, python-binance
sends DELETE parameters in the body). A name given in both takes the query's value.

Signed requests (`authenticate`), in Binance's order of checks:
- `X-MBX-APIKEY` missing -> -2014, unknown or revoked -> -2015 (HTTP 401);
- `timestamp` missing -> -1102; `recvWindow` above 60000 -> -1131 (default 5000);
- `timestamp > now + 1000` or `now - timestamp > recvWindow` -> -1021;
- `signature` missing -> -1102; it must be the lowercase (any case accepted) hex of
  HMAC-SHA256(secret, raw query + raw body) exactly as received, with the `signature=...`
  pair taken out and nothing put between the two parts; otherwise -1022;
- a key without the route's permission -> -2015.
`signed(ctx, handler, permission, weight)` wraps a handler with these checks and charges the
key's rate limits (the app charges the IP's). `sign_payload` is the client half (tests).

Decimals (`decimal`): `digits[.digits]` only (-1100 otherwise), parsed exactly on the
instrument's step; a value off the step, zero, or too large is the filter failure the
caller names (-1013).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from crossbook.domain.enums import Permission
from crossbook.gateway.binance.errors import binance_error, illegal, missing
from crossbook.gateway.context import GatewayContext
from crossbook.gateway.http import Request, Response
from crossbook.gateway.views import KeyRecord
from crossbook.protocol.decimals import DecimalError, DecimalScale

API_KEY_HEADER = b"x-mbx-apikey"
DEFAULT_WINDOW_MS = 5_000
MAX_WINDOW_MS = 60_000
FUTURE_SLACK_MS = 1_000
DECIMAL = re.compile(r"[0-9]{1,20}(\.[0-9]{1,20})?")
_DECIMAL_TEXT = "^([0-9]{1,20})(\\.[0-9]{1,20})?$"
_INTEGER_TEXT = "^[0-9]{1,20}$"
_sha256 = hashlib.sha256


class Params:
    __slots__ = ("values",)

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    @classmethod
    def of(cls, request: Request) -> Params:
        values: dict[str, str] = {}
        if request.body:
            values.update(parse_qsl(request.body.decode("utf-8", "replace"),
                                    keep_blank_values=True))
        if request.raw_query:
            values.update(parse_qsl(request.raw_query.decode("utf-8", "replace"),
                                    keep_blank_values=True))
        return cls(values)

    def get(self, name: str) -> str | None:
        """The value, or None when absent or empty (Binance treats both as not sent)."""
        value = self.values.get(name)
        return value if value else None

    def require(self, name: str) -> str:
        value = self.values.get(name)
        if not value:
            raise missing(name)
        return value

    def integer(self, name: str, default: int | None = None) -> int | None:
        text = self.get(name)
        if text is None:
            return default
        if not text.isdigit() or len(text) > 20:
            raise illegal(name, _INTEGER_TEXT)
        return int(text)

    def limit(self, default: int, most: int) -> int:
        value = self.integer("limit", default)
        assert value is not None
        if value <= 0:
            raise illegal("limit", _INTEGER_TEXT)
        return min(value, most)

    def boolean(self, name: str) -> bool:
        return (self.get(name) or "").lower() == "true"

    def decimal(
        self, name: str, scale: DecimalScale, failure: str, *, required: bool = False
    ) -> int:
        """Steps of `scale` (0 when absent and not required); -1013 `failure` off the step."""
        text = self.get(name)
        if text is None:
            if required:
                raise missing(name)
            return 0
        if not DECIMAL.fullmatch(text):
            raise illegal(name, _DECIMAL_TEXT)
        value = scale.parse(text)
        if isinstance(value, DecimalError):
            raise binance_error(-1013, failure)
        return value


def strip_signature(raw: bytes) -> tuple[bytes, bytes | None]:
    """`raw` without its `signature=` pair, and that signature (None if absent)."""
    if b"signature=" not in raw:
        return raw, None
    kept, signature = [], None
    for pair in raw.split(b"&"):
        if pair.startswith(b"signature="):
            signature = pair[len(b"signature="):]
        else:
            kept.append(pair)
    return b"&".join(kept), signature


def sign_payload(secret: str | bytes, payload: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, payload, _sha256).hexdigest()


def api_key(request: Request, keys: dict[str, KeyRecord]) -> KeyRecord:
    raw = request.headers.get(API_KEY_HEADER)
    if not raw:
        raise binance_error(-2014, "API-key format invalid.", 401)
    key = keys.get(raw.decode("latin-1"))
    if key is None:
        raise binance_error(-2015, "Invalid API-key, IP, or permissions for action.", 401)
    return key


def check_permission(key: KeyRecord, permission: Permission) -> None:
    if not key.permissions & permission:
        raise binance_error(-2015, "Invalid API-key, IP, or permissions for action.", 401)


def authenticate(
    request: Request, params: Params, keys: dict[str, KeyRecord], now_ms: Callable[[], int],
    permission: Permission,
) -> KeyRecord:
    key = api_key(request, keys)
    timestamp = params.integer("timestamp")
    if timestamp is None:
        raise missing("timestamp")
    window = params.integer("recvWindow", DEFAULT_WINDOW_MS)
    assert window is not None
    if window > MAX_WINDOW_MS:
        raise binance_error(-1131, f"recvWindow must be less than {MAX_WINDOW_MS}.")
    now = now_ms()
    if timestamp > now + FUTURE_SLACK_MS:
        raise binance_error(
            -1021, f"Timestamp for this request was {FUTURE_SLACK_MS}ms ahead of the server's "
            f"time (server time {now}, timestamp {timestamp}).",
        )
    if now - timestamp > window:
        raise binance_error(
            -1021, f"Timestamp for this request is outside of the recvWindow ({window} ms; "
            f"server time {now}, timestamp {timestamp}).",
        )
    query, from_query = strip_signature(request.raw_query)
    body, from_body = strip_signature(request.body)
    signature = from_query if from_query is not None else from_body
    if not signature:
        raise missing("signature")
    expected = hmac.new(key.secret, query + body, _sha256).hexdigest().encode()
    if not hmac.compare_digest(expected, signature.lower()):
        raise binance_error(-1022, "Signature for this request is not valid.")
    check_permission(key, permission)
    return key


SignedHandler = Callable[[Request, Params, KeyRecord], Awaitable[Response]]


def signed(
    ctx: GatewayContext, handler: SignedHandler, permission: Permission, weight: int,
    orders: bool = False,
) -> Callable[[Request], Awaitable[Response]]:
    """A route handler that authenticates a signed request and charges the key's limits."""
    keys, now_ms, limits = ctx.views.keys, ctx.now_ms, ctx.limits

    async def run(request: Request) -> Response:
        params = Params.of(request)
        key = authenticate(request, params, keys, now_ms, permission)
        request.key = key
        limits.charge_key(key.key, weight, 1 if orders else 0)
        return await handler(request, params, key)

    return run
