"""The Binance spot dialect under `/api/v3`, for binance-connector, ccxt and python-binance
pointed at crossbook with only their base URL changed.

`register(router, context)` (found by `crossbook.node` when this package is present) renders
every `/api/v3` error as `{"code": -xxxx, "msg": "..."}` (`errors`) and adds the routes:

- `market`: ping, time, exchangeInfo, depth, trades, aggTrades, klines, ticker/24hr,
  ticker/price, ticker/bookTicker, avgPrice (public);
- `trading`: order (new, query, cancel), order/test, openOrders (list, cancel all),
  allOrders (signed);
- `account`: account, myTrades (signed), userDataStream listen keys (API key).

Symbols are `BTCUSDT` for crossbook's `BTC-USDT` (`symbols`). Parameters come from the query
string or a form body for every method, and signatures cover the raw query and body as
received (`params`). Orders go through the sequencer like native ones and are answered
after they are durable; reads come from the durable views. Integers stay integers inside:
decimal strings are parsed on the instrument's steps and rendered with `symbols.Formats`.
"""

from __future__ import annotations

from crossbook.gateway.binance import account, errors, market, trading
from crossbook.gateway.binance.symbols import SymbolTable
from crossbook.gateway.context import GatewayContext
from crossbook.gateway.http import Router

PREFIX = "/api/v3"


def register(router: Router, context: GatewayContext) -> None:
    router.error_style(PREFIX, errors.render)
    table = SymbolTable(context.views)
    market.register(router, context, table)
    trading.register(router, context, table)
    account.register(router, context, table)
