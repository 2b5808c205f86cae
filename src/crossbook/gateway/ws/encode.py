"""Stream values (`crossbook.marketdata.views`) to wire bytes: Binance payloads and native ones.

Each function encodes one update for one topic; the publisher calls it once per topic and the
hub sends the same bytes to every subscriber. Integers become decimal strings with the
instrument's scales (`InstrumentScales`), times become milliseconds.

Binance shapes follow the spec's §6: `depthUpdate` (`U`/`u`, absolute level totals, qty "0"
removes), partial depth (`lastUpdateId`, top N), `trade`, `aggTrade`, `bookTicker`, `kline`,
`24hrTicker`. A slow client's resync snapshot is `{"e":"depthSnapshot",...,"lastUpdateId"}`:
a Binance client that does not know it sees the next diff's `U` jump and refetches the REST
snapshot, as its sync algorithm says.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from crossbook.marketdata.views import (
    AggTrade,
    BookTicker,
    DepthDiff,
    DepthSnapshot,
    KlineUpdate,
    Level,
    PublicTrade,
    Ticker24h,
)
from crossbook.protocol import ws as wire
from crossbook.protocol.decimals import InstrumentScales

_encode = msgspec.json.Encoder().encode
_NS_PER_MS = 1_000_000


def ms(ns: int) -> int:
    return ns // _NS_PER_MS


def _levels(scales: InstrumentScales, levels: list[Level]) -> list[tuple[str, str]]:
    price, qty = scales.price.format, scales.quantity.format
    return [(price(level[0]), qty(level[1])) for level in levels]


# -- Binance -------------------------------------------------------------------------------


def b_depth(name: str, s: InstrumentScales, diff: DepthDiff) -> bytes:
    return _encode({
        "e": "depthUpdate", "E": ms(diff.ts), "s": name, "U": diff.first_update_id,
        "u": diff.last_update_id, "b": _levels(s, diff.bids), "a": _levels(s, diff.asks),
    })


def b_partial(s: InstrumentScales, snap: DepthSnapshot) -> bytes:
    return _encode({
        "lastUpdateId": snap.last_update_id, "bids": _levels(s, snap.bids),
        "asks": _levels(s, snap.asks),
    })


def b_resync(name: str, s: InstrumentScales, snap: DepthSnapshot, now_ns: int) -> bytes:
    return _encode({
        "e": "depthSnapshot", "E": ms(now_ns), "s": name, "lastUpdateId": snap.last_update_id,
        "bids": _levels(s, snap.bids), "asks": _levels(s, snap.asks),
    })


def b_trade(name: str, s: InstrumentScales, t: PublicTrade) -> bytes:
    return _encode({
        "e": "trade", "E": ms(t.ts), "s": name, "t": t.trade_id,
        "p": s.price.format(t.price), "q": s.quantity.format(t.qty), "T": ms(t.ts),
        "m": t.buyer_is_maker, "M": True,
    })


def b_agg_trade(name: str, s: InstrumentScales, t: AggTrade) -> bytes:
    return _encode({
        "e": "aggTrade", "E": ms(t.ts), "s": name, "a": t.agg_id,
        "p": s.price.format(t.price), "q": s.quantity.format(t.qty), "f": t.first_trade_id,
        "l": t.last_trade_id, "T": ms(t.ts), "m": t.buyer_is_maker, "M": True,
    })


def b_book_ticker(name: str, s: InstrumentScales, t: BookTicker) -> bytes:
    price, qty = s.price.format, s.quantity.format
    return _encode({
        "u": t.update_id, "s": name, "b": price(t.bid_price), "B": qty(t.bid_qty),
        "a": price(t.ask_price), "A": qty(t.ask_qty),
    })


def b_kline(name: str, s: InstrumentScales, k: KlineUpdate, now_ns: int) -> bytes:
    c = k.candle
    price, qty, quote = s.price.format, s.quantity.format, s.quote.format
    return _encode({
        "e": "kline", "E": ms(now_ns), "s": name, "k": {
            "t": ms(c.open_time), "T": ms(c.close_time), "s": name, "i": k.interval,
            "f": c.first_trade_id, "L": c.last_trade_id, "o": price(c.open),
            "c": price(c.close), "h": price(c.high), "l": price(c.low), "v": qty(c.volume),
            "n": c.count, "x": k.closed, "q": quote(c.quote_volume),
            "V": qty(c.taker_buy_volume), "Q": quote(c.taker_buy_quote_volume), "B": "0",
        },
    })


def b_ticker(name: str, s: InstrumentScales, t: Ticker24h) -> bytes:
    price, qty, quote = s.price.format, s.quantity.format, s.quote.format
    change = Decimal(price(t.last - t.open))
    percent = change * 100 / Decimal(price(t.open)) if t.open else Decimal(0)
    average = (
        Decimal(quote(t.quote_volume)) / Decimal(qty(t.volume)) if t.volume else Decimal(0)
    )
    return _encode({
        "e": "24hrTicker", "E": ms(t.close_time), "s": name, "p": str(change),
        "P": f"{percent:.3f}", "w": price(0) if not t.volume else f"{average:.8f}",
        "x": price(t.prev_close), "c": price(t.last), "Q": qty(t.last_qty),
        "b": price(t.bid_price), "B": qty(t.bid_qty), "a": price(t.ask_price),
        "A": qty(t.ask_qty), "o": price(t.open), "h": price(t.high), "l": price(t.low),
        "v": qty(t.volume), "q": quote(t.quote_volume), "O": ms(t.open_time),
        "C": ms(t.close_time), "F": t.first_trade_id, "L": t.last_trade_id, "n": t.count,
    })


# -- native ---------------------------------------------------------------------------------


def n_depth(symbol: str, s: InstrumentScales, diff: DepthDiff) -> bytes:
    return _encode(wire.DepthMessage(
        "depth", symbol, "update", diff.last_update_id, _levels(s, diff.bids),
        _levels(s, diff.asks), first_update_id=diff.first_update_id, time=ms(diff.ts),
    ))


def n_snapshot(symbol: str, s: InstrumentScales, snap: DepthSnapshot,
               resync: bool = False) -> bytes:
    return _encode(wire.DepthMessage(
        "depth", symbol, "snapshot", snap.last_update_id, _levels(s, snap.bids),
        _levels(s, snap.asks), resync=resync,
    ))


def n_trade(symbol: str, s: InstrumentScales, t: PublicTrade) -> bytes:
    return _encode(wire.TradeMessage(
        "trades", symbol, t.trade_id, s.price.format(t.price), s.quantity.format(t.qty),
        s.quote.format(t.quote_qty), "sell" if t.buyer_is_maker else "buy", ms(t.ts),
    ))


def n_book_ticker(symbol: str, s: InstrumentScales, t: BookTicker) -> bytes:
    price, qty = s.price.format, s.quantity.format
    bid, ask = t.bid_qty > 0, t.ask_qty > 0
    return _encode(wire.BookTickerMessage(
        "book_ticker", symbol, t.update_id,
        price(t.bid_price) if bid else None, qty(t.bid_qty) if bid else None,
        price(t.ask_price) if ask else None, qty(t.ask_qty) if ask else None,
    ))


def n_candle(symbol: str, s: InstrumentScales, k: KlineUpdate) -> bytes:
    c = k.candle
    price = s.price.format
    return _encode(wire.CandleMessage(
        "candles", symbol, k.interval, ms(c.open_time), ms(c.close_time), price(c.open),
        price(c.high), price(c.low), price(c.close), s.quantity.format(c.volume),
        s.quote.format(c.quote_volume), c.count, k.closed,
    ))


def n_ticker(symbol: str, s: InstrumentScales, t: Ticker24h) -> bytes:
    price = s.price.format
    traded = t.count > 0
    return _encode(wire.TickerMessage(
        "ticker", symbol, price(t.open) if traded else None,
        price(t.high) if traded else None, price(t.low) if traded else None,
        price(t.last) if traded else None, s.quantity.format(t.volume),
        s.quote.format(t.quote_volume), t.count, ms(t.open_time), ms(t.close_time),
    ))


def reply(request_id: Any, result: Any) -> bytes:
    return _encode(wire.Reply(request_id, result))


def error_reply(request_id: Any, code: int, message: str) -> bytes:
    return _encode(wire.Reply(request_id, None, wire.Error(code, message)))
