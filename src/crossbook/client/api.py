"""Every native REST endpoint as a `Call` builder (`crossbook.client.calls`).

One function per endpoint, named like the client method that runs it; the clients expose
these as methods (`await client.place_order(...)` or `client.place_order(...)`). Decimal
arguments accept `str`, `int` or `Decimal` and are sent as plain decimal strings.

Orders always carry a client order id (one is generated when none is given) so that a retry
after a lost answer is safe: the policy looks the order up by that id before sending again.
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from urllib.parse import quote

from crossbook.client.calls import Call, Safety
from crossbook.domain.rejects import Reject
from crossbook.protocol import native as wire

Num = str | int | Decimal
_ORDER_CONFLICTS = frozenset({int(Reject.DUPLICATE_CLIENT_ORDER_ID)})
_CANCEL_CONFLICTS = frozenset({int(Reject.ORDER_NOT_OPEN), int(Reject.UNKNOWN_ORDER)})
_AMEND_CONFLICTS = frozenset({int(Reject.AMEND_NO_CHANGE)})


def dec(value: Num | None) -> str | None:
    """A plain decimal string (never exponent notation)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def new_client_order_id() -> str:
    return "sdk-" + secrets.token_hex(8)


# -- public market data -------------------------------------------------------------------


def server_time() -> Call[wire.ServerTime]:
    return Call("GET", "/v1/time", wire.ServerTime, signed=False)


def ready() -> Call[wire.Readiness]:
    return Call("GET", "/ready", wire.Readiness, signed=False)


def assets() -> Call[list[wire.AssetInfo]]:
    return Call("GET", "/v1/assets", list[wire.AssetInfo], signed=False)


def instruments() -> Call[list[wire.InstrumentInfo]]:
    return Call("GET", "/v1/instruments", list[wire.InstrumentInfo], signed=False)


def depth(symbol: str, limit: int = 100) -> Call[wire.Depth]:
    return Call("GET", "/v1/depth", wire.Depth, {"symbol": symbol, "limit": limit},
                signed=False)


def trades(symbol: str, limit: int = 100) -> Call[list[wire.Trade]]:
    return Call("GET", "/v1/trades", list[wire.Trade], {"symbol": symbol, "limit": limit},
                signed=False)


def ticker(symbol: str) -> Call[wire.Ticker]:
    return Call("GET", "/v1/ticker", wire.Ticker, {"symbol": symbol}, signed=False)


def candles(symbol: str, interval: str = "1m", limit: int = 100) -> Call[list[wire.CandleInfo]]:
    return Call("GET", "/v1/candles", list[wire.CandleInfo],
                {"symbol": symbol, "interval": interval, "limit": limit}, signed=False)


# -- the caller's account -----------------------------------------------------------------


def account() -> Call[wire.AccountInfo]:
    return Call("GET", "/v1/account", wire.AccountInfo)


def balances() -> Call[list[wire.Balance]]:
    return Call("GET", "/v1/balances", list[wire.Balance])


def fills(symbol: str | None = None, limit: int = 100) -> Call[list[wire.Fill]]:
    return Call("GET", "/v1/fills", list[wire.Fill], {"symbol": symbol, "limit": limit})


# -- orders -------------------------------------------------------------------------------


def _order_path(order_id: int | None, client_order_id: str | None) -> str:
    if order_id is not None:
        return f"/v1/orders/{int(order_id)}"
    if client_order_id:
        return f"/v1/orders/client/{quote(client_order_id, safe='')}"
    raise ValueError("give order_id or client_order_id")


def place_order(
    symbol: str,
    side: wire.SideName,
    type: wire.TypeName = "limit",
    quantity: Num | None = None,
    price: Num | None = None,
    *,
    quote_quantity: Num | None = None,
    stop_price: Num | None = None,
    time_in_force: wire.TifName = "GTC",
    expire_time: int | None = None,
    post_only: bool = False,
    iceberg_quantity: Num | None = None,
    stp: wire.StpName = "none",
    client_order_id: str | None = None,
) -> Call[wire.Order]:
    cid = client_order_id or new_client_order_id()
    body = wire.NewOrder(
        symbol=symbol, side=side, type=type, quantity=dec(quantity),
        quote_quantity=dec(quote_quantity), price=dec(price), stop_price=dec(stop_price),
        time_in_force=time_in_force, expire_time=expire_time, post_only=post_only,
        iceberg_quantity=dec(iceberg_quantity), stp=stp, client_order_id=cid,
    )
    return Call("POST", "/v1/orders", wire.Order, body=body, safety=Safety.DEDUPED,
                lookup=get_order(client_order_id=cid), conflicts=_ORDER_CONFLICTS)


def get_order(
    order_id: int | None = None, *, client_order_id: str | None = None
) -> Call[wire.Order]:
    return Call("GET", _order_path(order_id, client_order_id), wire.Order)


def cancel_order(
    order_id: int | None = None, *, client_order_id: str | None = None
) -> Call[wire.Order]:
    path = _order_path(order_id, client_order_id)
    return Call("DELETE", path, wire.Order, safety=Safety.DEDUPED,
                lookup=Call("GET", path, wire.Order), conflicts=_CANCEL_CONFLICTS)


def amend_order(
    order_id: int | None = None, *, client_order_id: str | None = None,
    quantity: Num | None = None, price: Num | None = None,
) -> Call[wire.Order]:
    path = _order_path(order_id, client_order_id)
    body = wire.AmendOrder(quantity=dec(quantity), price=dec(price))
    return Call("PATCH", path, wire.Order, body=body, safety=Safety.DEDUPED,
                lookup=Call("GET", path, wire.Order), conflicts=_AMEND_CONFLICTS)


def open_orders(symbol: str | None = None) -> Call[list[wire.Order]]:
    return Call("GET", "/v1/orders", list[wire.Order], {"symbol": symbol})


def cancel_all(symbol: str) -> Call[wire.CanceledOrders]:
    return Call("DELETE", "/v1/orders", wire.CanceledOrders, {"symbol": symbol},
                safety=Safety.DEDUPED)


def order_history(symbol: str | None = None, limit: int = 100) -> Call[list[wire.Order]]:
    return Call("GET", "/v1/orders/history", list[wire.Order],
                {"symbol": symbol, "limit": limit})


# -- admin --------------------------------------------------------------------------------

_ADMIN = "/v1/admin"


def create_account(
    account: int, maker_fee_bps: int = 0, taker_fee_bps: int = 0
) -> Call[wire.AccountSummary]:
    return Call("POST", f"{_ADMIN}/accounts", wire.AccountSummary,
                body=wire.NewAccount(account, maker_fee_bps, taker_fee_bps),
                safety=Safety.DEDUPED, conflicts=frozenset({int(Reject.ACCOUNT_EXISTS)}))


def list_accounts() -> Call[list[wire.AccountSummary]]:
    return Call("GET", f"{_ADMIN}/accounts", list[wire.AccountSummary])


def set_fees(account: int, maker_fee_bps: int, taker_fee_bps: int) -> Call[wire.AccountSummary]:
    return Call("PUT", f"{_ADMIN}/accounts/{int(account)}/fees", wire.AccountSummary,
                body=wire.Fees(maker_fee_bps, taker_fee_bps), safety=Safety.DEDUPED)


def _transfer(kind: str, account: int, asset: str, amount: Num,
              tx_id: str | None) -> Call[wire.TransferDone]:
    body = wire.Transfer(account, asset, dec(amount) or "0",
                         tx_id or f"sdk-{kind}-{secrets.token_hex(8)}")
    return Call("POST", f"{_ADMIN}/{kind}", wire.TransferDone, body=body,
                safety=Safety.DEDUPED, conflicts=frozenset({int(Reject.DUPLICATE_TRANSACTION)}))


def deposit(
    account: int, asset: str, amount: Num, tx_id: str | None = None
) -> Call[wire.TransferDone]:
    return _transfer("deposits", account, asset, amount, tx_id)


def withdraw(
    account: int, asset: str, amount: Num, tx_id: str | None = None
) -> Call[wire.TransferDone]:
    return _transfer("withdrawals", account, asset, amount, tx_id)


def create_api_key(
    account: int, permissions: list[wire.PermissionName] | None = None, label: str = ""
) -> Call[wire.ApiKeyInfo]:
    names: list[wire.PermissionName] = permissions or ["read", "trade"]
    return Call("POST", f"{_ADMIN}/api-keys", wire.ApiKeyInfo,
                body=wire.NewApiKey(account, names, label), safety=Safety.UNSAFE)


def list_api_keys() -> Call[list[wire.ApiKeyInfo]]:
    return Call("GET", f"{_ADMIN}/api-keys", list[wire.ApiKeyInfo])


def revoke_api_key(key: str) -> Call[wire.ApiKeyInfo]:
    return Call("DELETE", f"{_ADMIN}/api-keys/{quote(key, safe='')}", wire.ApiKeyInfo,
                safety=Safety.DEDUPED)


def add_asset(code: str, precision: int) -> Call[wire.AssetInfo]:
    return Call("POST", f"{_ADMIN}/assets", wire.AssetInfo,
                body=wire.NewAsset(code, precision), safety=Safety.DEDUPED,
                conflicts=frozenset({int(Reject.ASSET_EXISTS)}))


def add_instrument(
    symbol: str, base: str, quote: str, tick_size: Num, lot_size: Num, *,
    min_quantity: Num | None = None, max_quantity: Num | None = None,
    min_price: Num | None = None, max_price: Num | None = None, min_notional: Num = "0",
) -> Call[wire.InstrumentInfo]:
    body = wire.NewInstrument(
        symbol, base, quote, dec(tick_size) or "", dec(lot_size) or "",
        min_quantity=dec(min_quantity), max_quantity=dec(max_quantity),
        min_price=dec(min_price), max_price=dec(max_price), min_notional=dec(min_notional) or "0",
    )
    return Call("POST", f"{_ADMIN}/instruments", wire.InstrumentInfo, body=body,
                safety=Safety.DEDUPED, conflicts=frozenset({int(Reject.SYMBOL_EXISTS)}))


def halt(symbol: str) -> Call[wire.InstrumentInfo]:
    return Call("POST", f"{_ADMIN}/instruments/{quote(symbol, safe='')}/halt",
                wire.InstrumentInfo, safety=Safety.DEDUPED)


def resume(symbol: str) -> Call[wire.InstrumentInfo]:
    return Call("POST", f"{_ADMIN}/instruments/{quote(symbol, safe='')}/resume",
                wire.InstrumentInfo, safety=Safety.DEDUPED)
