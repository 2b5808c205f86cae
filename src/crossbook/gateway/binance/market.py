"""Public Binance endpoints (no signature; an `X-MBX-APIKEY` header is ignored).

`/api/v3/ping`, `time`, `exchangeInfo`, `depth`, `trades`, `aggTrades`, `klines` (and
`uiKlines`), `ticker/24hr`, `ticker/price`, `ticker/bookTicker`, `avgPrice`.

Everything comes from the market data views, which fold durable batches only. Depth's
`lastUpdateId` is the symbol's book counter, the one the WebSocket diff stream's `U`/`u`
count with. Times are milliseconds; `startTime`/`endTime` bound trade and candle stamps
inclusively to the millisecond. Klines are identified by their open time, as Binance's: a
`startTime` inside a candle starts at the next candle, an `endTime` inside one still
returns that whole candle. `klines` reaching past the candles memory holds (fewer
than `limit`, or a `startTime`) merges in those of the history database when one is
configured (`gateway.history`); stored candles carry no taker-buy split, so those fields
are 0 for the parts of a candle that come from the database. Spot tickers carry no
`time` key (ccxt reads one as a futures ticker). Filters in `exchangeInfo` mirror the
engine's checks: PRICE_FILTER (tick, price bounds), LOT_SIZE and MARKET_LOT_SIZE (lot,
quantity bounds), NOTIONAL (minimum notional; the engine applies it to limit orders and
quote-sized market orders).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec

from crossbook.gateway.binance.errors import binance_error, illegal, invalid_symbol, missing
from crossbook.gateway.binance.params import Params
from crossbook.gateway.binance.symbols import Formats, SymbolTable, ms
from crossbook.gateway.context import GatewayContext
from crossbook.gateway.history import merge_candles, reaches_past
from crossbook.gateway.http import Request, Response, Router, json_response
from crossbook.gateway.views import InstrumentRecord
from crossbook.marketdata.views import INTERVALS, MarketData
from crossbook.marketdata.views.candles import interval_bounds

ORDER_TYPES = ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
               "TAKE_PROFIT_LIMIT"]
STP_MODES = ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT"]
MAX_NOTIONAL = "9000000000000000.00000000"
_NS_PER_MS = 1_000_000
_AVG_PRICE_MINUTES = 5
_DEPTH_MAX = 5000


def symbol_info(record: InstrumentRecord, f: Formats) -> dict[str, Any]:
    inst = record.instrument
    price_filter = {"filterType": "PRICE_FILTER", "minPrice": f.price(inst.min_price),
                    "maxPrice": f.price(inst.max_price), "tickSize": f.price(1)}
    lots = {"minQty": f.qty(inst.min_qty), "maxQty": f.qty(inst.max_qty), "stepSize": f.qty(1)}
    return {
        "symbol": f.name,
        "status": "HALT" if record.halted else "TRADING",
        "baseAsset": inst.base,
        "baseAssetPrecision": inst.base_precision,
        "quoteAsset": inst.quote,
        "quotePrecision": inst.quote_precision,
        "quoteAssetPrecision": inst.quote_precision,
        "baseCommissionPrecision": inst.base_precision,
        "quoteCommissionPrecision": inst.quote_precision,
        "orderTypes": ORDER_TYPES,
        "icebergAllowed": True,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "amendAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            price_filter,
            {"filterType": "LOT_SIZE", **lots},
            {"filterType": "MARKET_LOT_SIZE", **lots},
            {"filterType": "NOTIONAL", "minNotional": f.quote(inst.min_notional),
             "applyMinToMarket": False, "maxNotional": MAX_NOTIONAL,
             "applyMaxToMarket": False, "avgPriceMins": _AVG_PRICE_MINUTES},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "NONE",
        "allowedSelfTradePreventionModes": STP_MODES,
    }


def _percent(change: int, base: int) -> str:
    if not base:
        return "0.000"
    return format(Decimal(change) * 100 / Decimal(base), ".3f")


def ticker_24h(market: MarketData, record: InstrumentRecord, f: Formats) -> dict[str, Any]:
    t = market.ticker(record.instrument.symbol)
    weighted = "0.00000000"
    if t.volume:
        base = Decimal(t.volume) * Decimal(record.instrument.lot_size)
        quote = Decimal(t.quote_volume).scaleb(-record.instrument.quote_precision)
        weighted = format(quote / base, ".8f")
    return {
        "symbol": f.name,
        "priceChange": f.price(t.last - t.open),
        "priceChangePercent": _percent(t.last - t.open, t.open),
        "weightedAvgPrice": weighted,
        "prevClosePrice": f.price(t.prev_close),
        "lastPrice": f.price(t.last),
        "lastQty": f.qty(t.last_qty),
        "bidPrice": f.price(t.bid_price),
        "bidQty": f.qty(t.bid_qty),
        "askPrice": f.price(t.ask_price),
        "askQty": f.qty(t.ask_qty),
        "openPrice": f.price(t.open),
        "highPrice": f.price(t.high),
        "lowPrice": f.price(t.low),
        "volume": f.qty(t.volume),
        "quoteVolume": f.quote(t.quote_volume),
        "openTime": ms(t.open_time),
        "closeTime": ms(t.close_time),
        "firstId": t.first_trade_id,
        "lastId": t.last_trade_id,
        "count": t.count,
    }


def _time_range(params: Params) -> tuple[int | None, int | None]:
    start = params.integer("startTime")
    end = params.integer("endTime")
    if start is not None and end is not None and start > end:
        raise binance_error(-1023, "Start time is greater than end time.")
    return (
        None if start is None else start * _NS_PER_MS,
        None if end is None else end * _NS_PER_MS + _NS_PER_MS - 1,
    )


def _candle_range(
    interval: str, start: int | None, end: int | None
) -> tuple[int | None, int | None]:
    """The open-time range `[start, end]` on candle boundaries: `start` moved up to the
    first candle opening at or after it, `end` to the last nanosecond of its candle. The
    same candles open in both ranges; a source that aggregates whole candles from stored
    rows (the history database) then neither adds the candle around `start` nor cuts the
    one around `end`."""
    if start is not None:
        opens, next_open = interval_bounds(interval, start)
        start = start if opens == start else next_open
    if end is not None:
        end = interval_bounds(interval, end)[1] - 1
    return start, end


def _symbols_param(table: SymbolTable, params: Params) -> list[InstrumentRecord] | None:
    """`symbol` or `symbols` (a JSON array) as records; None when neither is given."""
    one = params.get("symbol")
    if one is not None:
        return [table.lookup(one)]
    many = params.get("symbols")
    if many is None:
        return None
    try:
        names = msgspec.json.decode(many, type=list[str])
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise illegal("symbols", '["SYMBOL1","SYMBOL2"]') from None
    return [table.lookup(name) for name in names]


def register(router: Router, ctx: GatewayContext, table: SymbolTable) -> None:
    market = ctx.market

    def fmt(record: InstrumentRecord) -> Formats:
        return table.formats(record.instrument.symbol)

    def known(record: InstrumentRecord) -> str:
        symbol = record.instrument.symbol
        if symbol not in market.symbols():
            raise invalid_symbol()
        return symbol

    async def ping(request: Request) -> Response:
        return Response(200, b"{}")

    async def server_time(request: Request) -> Response:
        return json_response({"serverTime": ctx.now_ms()})

    async def exchange_info(request: Request) -> Response:
        chosen = _symbols_param(table, Params.of(request))
        records = table.all() if chosen is None else chosen
        return json_response({
            "timezone": "UTC", "serverTime": ctx.now_ms(), "rateLimits": [],
            "exchangeFilters": [], "symbols": [symbol_info(r, fmt(r)) for r in records],
        })

    async def depth(request: Request) -> Response:
        params = Params.of(request)
        record = table.lookup(params.get("symbol"))
        limit = params.limit(100, _DEPTH_MAX)
        f = fmt(record)
        snap = market.depth(known(record), limit)
        return json_response({
            "lastUpdateId": snap.last_update_id,
            "bids": [[f.price(level[0]), f.qty(level[1])] for level in snap.bids],
            "asks": [[f.price(level[0]), f.qty(level[1])] for level in snap.asks],
        })

    async def trades(request: Request) -> Response:
        params = Params.of(request)
        record = table.lookup(params.get("symbol"))
        f = fmt(record)
        found = market.trades(known(record), params.limit(500, 1000))
        return json_response([
            {"id": t.trade_id, "price": f.price(t.price), "qty": f.qty(t.qty),
             "quoteQty": f.quote(t.quote_qty), "time": ms(t.ts),
             "isBuyerMaker": t.buyer_is_maker, "isBestMatch": True}
            for t in found
        ])

    async def agg_trades(request: Request) -> Response:
        params = Params.of(request)
        record = table.lookup(params.get("symbol"))
        start, end = _time_range(params)
        f = fmt(record)
        found = market.agg_trades(
            known(record), params.limit(500, 1000), params.integer("fromId"), start, end
        )
        return json_response([
            {"a": a.agg_id, "p": f.price(a.price), "q": f.qty(a.qty), "f": a.first_trade_id,
             "l": a.last_trade_id, "T": ms(a.ts), "m": a.buyer_is_maker, "M": True}
            for a in found
        ])

    async def klines(request: Request) -> Response:
        params = Params.of(request)
        record = table.lookup(params.get("symbol"))
        interval = params.get("interval")
        if interval is None:
            raise missing("interval")
        if interval not in INTERVALS:
            raise binance_error(-1120, "Invalid interval.")
        start, end = _candle_range(interval, *_time_range(params))
        f = fmt(record)
        symbol, limit = known(record), params.limit(500, 1000)
        found = market.klines(symbol, interval, start, end, limit)
        if ctx.history is not None and reaches_past(len(found), limit, start):
            stored = await ctx.history.klines(symbol, interval, start=start, end=end,
                                              limit=limit)  # fmt: skip
            found = merge_candles(stored, found)
            found = found[:limit] if start is not None else found[-limit:]
        return json_response([
            [ms(c.open_time), f.price(c.open), f.price(c.high), f.price(c.low),
             f.price(c.close), f.qty(c.volume), ms(c.close_time), f.quote(c.quote_volume),
             c.count, f.qty(c.taker_buy_volume), f.quote(c.taker_buy_quote_volume), "0"]
            for c in found
        ])

    def each(request: Request, one: Callable[[InstrumentRecord], dict[str, Any]]) -> Response:
        params = Params.of(request)
        chosen = _symbols_param(table, params)
        if chosen is not None and params.get("symbol") is not None:
            known(chosen[0])
            return json_response(one(chosen[0]))
        records = table.all() if chosen is None else chosen
        return json_response([
            one(r) for r in records if r.instrument.symbol in market.symbols()
        ])

    def last_price(record: InstrumentRecord) -> dict[str, Any]:
        f = fmt(record)
        return {"symbol": f.name, "price": f.price(market.ticker(record.instrument.symbol).last)}

    def book_ticker(record: InstrumentRecord) -> dict[str, Any]:
        f = fmt(record)
        b = market.book_ticker(record.instrument.symbol)
        return {"symbol": f.name, "bidPrice": f.price(b.bid_price), "bidQty": f.qty(b.bid_qty),
                "askPrice": f.price(b.ask_price), "askQty": f.qty(b.ask_qty)}

    async def ticker(request: Request) -> Response:
        return each(request, lambda r: ticker_24h(market, r, fmt(r)))

    async def ticker_price(request: Request) -> Response:
        return each(request, last_price)

    async def ticker_book(request: Request) -> Response:
        return each(request, book_ticker)

    async def avg_price(request: Request) -> Response:
        params = Params.of(request)
        record = table.lookup(params.get("symbol"))
        f = fmt(record)
        since = (ctx.now_ms() - _AVG_PRICE_MINUTES * 60_000) * _NS_PER_MS
        found = market.trades(known(record), 1000, start=since)
        lots = sum(t.qty for t in found)
        price = "0.00000000"
        close = 0
        if lots:
            inst = record.instrument
            quote = Decimal(sum(t.quote_qty for t in found)).scaleb(-inst.quote_precision)
            average = quote / (Decimal(lots) * Decimal(inst.lot_size))
            price = format(average, ".8f")
            close = ms(found[-1].ts)
        else:
            last = market.trades(record.instrument.symbol, 1)
            if last:
                price, close = f.price(last[-1].price), ms(last[-1].ts)
        return json_response({"mins": _AVG_PRICE_MINUTES, "price": price, "closeTime": close})

    public = {"tags": ("binance market data",)}
    router.add("GET", "/api/v3/ping", ping, weight=1, summary="Binance: ping", **public)
    router.add("GET", "/api/v3/time", server_time, weight=1, summary="Binance: server time",
               **public)
    router.add("GET", "/api/v3/exchangeInfo", exchange_info, weight=20,
               summary="Binance: symbols and filters", **public)
    router.add("GET", "/api/v3/depth", depth, weight=5, summary="Binance: order book", **public)
    router.add("GET", "/api/v3/trades", trades, weight=25, summary="Binance: recent trades",
               **public)
    router.add("GET", "/api/v3/aggTrades", agg_trades, weight=4,
               summary="Binance: aggregated trades", **public)
    for path in ("/api/v3/klines", "/api/v3/uiKlines"):
        router.add("GET", path, klines, weight=2, summary="Binance: candles", **public)
    router.add("GET", "/api/v3/ticker/24hr", ticker, weight=2,
               summary="Binance: 24 h rolling statistics", **public)
    router.add("GET", "/api/v3/ticker/price", ticker_price, weight=2,
               summary="Binance: last price", **public)
    router.add("GET", "/api/v3/ticker/bookTicker", ticker_book, weight=2,
               summary="Binance: best bid and ask", **public)
    router.add("GET", "/api/v3/avgPrice", avg_price, weight=2,
               summary="Binance: average price over 5 minutes", **public)
