"""Public market data under `/v1` (no signature; weighted per IP): server time, assets,
instruments, depth, recent trades, the 24 h ticker and candles.

Everything is read from the market data views (`crossbook.marketdata.views.MarketData`),
which are fed by durable batches only, so nothing here runs ahead of the journal. Candles
(`?symbol=&interval=&limit=&start_time=&end_time=`, ms, inclusive) that the views do not
hold (older ones, those before a restart) come from the history database when one is
configured.
"""

from __future__ import annotations

from collections.abc import Callable

from crossbook.gateway.context import GatewayContext
from crossbook.gateway.history import merge_candles, reaches_past, time_range
from crossbook.gateway.http import (
    Request,
    Response,
    Router,
    bad_request,
    int_param,
    json_response,
)
from crossbook.gateway.native import render
from crossbook.gateway.native.orders import instrument
from crossbook.gateway.views import InstrumentRecord
from crossbook.marketdata.views import INTERVALS
from crossbook.protocol import native as wire


def instrument_info(record: InstrumentRecord) -> wire.InstrumentInfo:
    inst, scales = record.instrument, record.scales
    return wire.InstrumentInfo(
        symbol=inst.symbol,
        base=inst.base,
        quote=inst.quote,
        tick_size=inst.tick_size,
        lot_size=inst.lot_size,
        min_quantity=scales.quantity.format(inst.min_qty),
        max_quantity=scales.quantity.format(inst.max_qty),
        min_price=scales.price.format(inst.min_price),
        max_price=scales.price.format(inst.max_price),
        min_notional=scales.quote.format(inst.min_notional),
        status="halted" if record.halted else "trading",
    )


def register(router: Router, ctx: GatewayContext) -> None:
    views, market = ctx.views, ctx.market

    async def server_time(request: Request) -> Response:
        return json_response(wire.ServerTime(ctx.now_ms()))

    async def assets(request: Request) -> Response:
        return json_response([wire.AssetInfo(a.code, a.precision) for a in views.assets.values()])

    async def instruments(request: Request) -> Response:
        return json_response([instrument_info(r) for r in views.instruments.values()])

    async def depth(request: Request) -> Response:
        record = instrument(ctx, request.query.get("symbol"))
        limit = int_param(request, "limit", 100, 5000)
        symbol = record.instrument.symbol
        price, qty = record.scales.price.format, record.scales.quantity.format
        if symbol not in market.symbols():
            return json_response(wire.Depth(symbol, 0, [], []))
        snap = market.depth(symbol, limit)
        return json_response(wire.Depth(
            symbol, snap.last_update_id,
            [(price(level[0]), qty(level[1])) for level in snap.bids],
            [(price(level[0]), qty(level[1])) for level in snap.asks],
        ))

    async def trades(request: Request) -> Response:
        record = instrument(ctx, request.query.get("symbol"))
        limit = int_param(request, "limit", 500, 1000)
        symbol, scales = record.instrument.symbol, record.scales
        found = market.trades(symbol, limit) if symbol in market.symbols() else []
        return json_response([
            wire.Trade(
                t.trade_id, scales.price.format(t.price), scales.quantity.format(t.qty),
                scales.quote.format(t.quote_qty), "sell" if t.buyer_is_maker else "buy",
                render.ms(t.ts),
            )
            for t in found
        ])

    async def ticker(request: Request) -> Response:
        record = instrument(ctx, request.query.get("symbol"))
        symbol, scales = record.instrument.symbol, record.scales
        price, qty = scales.price.format, scales.quantity.format
        if symbol not in market.symbols():
            now = ctx.now_ms()
            return json_response(wire.Ticker(
                symbol, None, None, None, None, qty(0), scales.quote.format(0), 0,
                None, None, None, None, now, now,
            ))
        t = market.ticker(symbol)
        traded = t.count > 0

        def opt(value: int, fmt: Callable[[int], str]) -> str | None:
            return fmt(value) if value else None

        return json_response(wire.Ticker(
            symbol,
            price(t.open) if traded else None,
            price(t.high) if traded else None,
            price(t.low) if traded else None,
            price(t.last) if t.last else None,
            qty(t.volume), scales.quote.format(t.quote_volume), t.count,
            opt(t.bid_price, price), opt(t.bid_qty, qty), opt(t.ask_price, price),
            opt(t.ask_qty, qty), render.ms(t.open_time), render.ms(t.close_time),
        ))

    async def candles(request: Request) -> Response:
        record = instrument(ctx, request.query.get("symbol"))
        interval = request.query.get("interval", "1m")
        if interval not in INTERVALS:
            raise bad_request(f"interval must be one of {', '.join(INTERVALS)}")
        limit = int_param(request, "limit", 500, 1000)
        symbol, scales = record.instrument.symbol, record.scales
        price, qty = scales.price.format, scales.quantity.format
        start, end = time_range(request.query)
        last = None if end is None else end - 1
        found = (market.klines(symbol, interval, start, last, limit)
                 if symbol in market.symbols() else [])  # fmt: skip
        if ctx.history is not None and reaches_past(len(found), limit, start):
            stored = await ctx.history.klines(symbol, interval, start=start, end=last,
                                              limit=limit)  # fmt: skip
            found = merge_candles(stored, found)
            found = found[:limit] if start is not None else found[-limit:]
        return json_response([
            wire.CandleInfo(
                render.ms(c.open_time), render.ms(c.close_time), price(c.open), price(c.high),
                price(c.low), price(c.close), qty(c.volume), scales.quote.format(c.quote_volume),
                c.count,
            )
            for c in found
        ])

    public = {"tags": ("market data",)}
    router.add("GET", "/v1/time", server_time, response=wire.ServerTime,
               summary="Server time (ms)", **public)
    router.add("GET", "/v1/assets", assets, response=list[wire.AssetInfo],
               summary="Assets and their precision", **public)
    router.add("GET", "/v1/instruments", instruments, weight=10,
               response=list[wire.InstrumentInfo], summary="Instruments and filters", **public)
    router.add("GET", "/v1/depth", depth, weight=5, response=wire.Depth,
               summary="Order book levels with the last update id", **public)
    router.add("GET", "/v1/trades", trades, weight=5, response=list[wire.Trade],
               summary="Recent public trades", **public)
    router.add("GET", "/v1/ticker", ticker, weight=2, response=wire.Ticker,
               summary="Rolling 24 h statistics", **public)
    router.add("GET", "/v1/candles", candles, weight=2, response=list[wire.CandleInfo],
               summary="Candles (interval=1m, 5m, 1h, 1d, ...)", **public)
