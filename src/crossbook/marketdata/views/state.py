"""`MarketData`: every symbol's public views, folded from durable batches.

Contract:

- Feed it every batch in sequence order, from the first (replay included) or from a book
  restored with `restore_book`. `on_batch` has the `Sink` shape; `apply` does the same and
  returns the batch's `Updates` for a publisher to encode once per stream.
- Time is the sequencer's stamp: the latest stamp folded is `now` for the 24 h window.
- Per batch and symbol there is at most one `DepthDiff`, covering the update ids the batch
  changed (`U` = first, `u` = last) with each changed price's total after the batch; so
  consecutive diffs of a symbol are gapless whatever the batch sizes. A symbol's book
  ticker is published when the best bid or ask (price or qty) differs from the batch start.
- Queries (`depth`, `trades`, `ticker`, `klines`, ...) raise `KeyError` for a symbol never
  seen (neither `InstrumentAdded` nor any of its events) and for an unknown interval.

Pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final, Protocol

from crossbook.domain.enums import Side
from crossbook.domain.events import DepthChanged, Event, InstrumentAdded, TradeExecuted
from crossbook.marketdata.views.book import L2Book
from crossbook.marketdata.views.candles import INTERVALS, Bar, CandleSeries
from crossbook.marketdata.views.streams import (
    AggTrade,
    BookTicker,
    Candle,
    DepthDiff,
    DepthSnapshot,
    KlineUpdate,
    Level,
    PublicTrade,
    Ticker24h,
    Updates,
)
from crossbook.marketdata.views.ticker import Window
from crossbook.marketdata.views.trades import TradeTape, aggregate

_SELL: Final = Side.SELL
"""Enum members as module constants: reading `Side.SELL` from its class goes through the
enum metaclass's `__getattr__` hook on CPython 3.11 (about 40 times a global load)."""


class AppliedLike(Protocol):
    """What the views read of the sequencer's `Applied` (so they need not import it)."""

    @property
    def ts(self) -> int: ...

    @property
    def events(self) -> Sequence[Event]: ...


class _Symbol:
    __slots__ = ("book", "candles", "tape", "window")

    def __init__(self, symbol: str, trade_history: int, candle_history: int) -> None:
        self.book = L2Book(symbol)
        self.tape = TradeTape(trade_history)
        self.window = Window()
        self.candles = {interval: CandleSeries(interval, candle_history) for interval in INTERVALS}


class _DiffBuilder:
    """One symbol's depth diff of a batch; `add` also applies each change to the book."""

    __slots__ = ("asks", "bids", "book", "first", "last", "ts")

    def __init__(self, first: int, book: L2Book) -> None:
        self.first = self.last = first
        self.ts = 0
        self.book = book
        self.bids: dict[int, Level] = {}
        self.asks: dict[int, Level] = {}

    def add(self, change: DepthChanged, ts: int) -> None:
        self.book.apply(change)
        self.last, self.ts = change.update_id, ts
        bids, asks = self.bids, self.asks
        for level in change.bids:
            bids[level[0]] = level
        for level in change.asks:
            asks[level[0]] = level

    def build(self, symbol: str) -> DepthDiff:
        return DepthDiff(
            symbol=symbol,
            first_update_id=self.first,
            last_update_id=self.last,
            ts=self.ts,
            bids=sorted(self.bids.values(), key=lambda level: level[0], reverse=True),
            asks=sorted(self.asks.values(), key=lambda level: level[0]),
        )


def _top(book: L2Book) -> tuple[int, int, int, int]:
    bid, ask = book.best_bid() or (0, 0), book.best_ask() or (0, 0)
    return bid[0], bid[1], ask[0], ask[1]


class MarketData:
    def __init__(self, *, trade_history: int = 1000, candle_history: int = 1000) -> None:
        """`trade_history` bounds the trade and aggTrade rings, `candle_history` the closed
        candles kept per symbol and interval."""
        self._trade_history = trade_history
        self._candle_history = candle_history
        self._symbols: dict[str, _Symbol] = {}
        self.now = 0
        """The latest stamp folded (ns)."""

    def _state(self, symbol: str) -> _Symbol:
        state = self._symbols.get(symbol)
        if state is None:
            state = _Symbol(symbol, self._trade_history, self._candle_history)
            self._symbols[symbol] = state
        return state

    def on_batch(self, batch: Sequence[AppliedLike]) -> None:
        self.apply(batch)

    def apply(self, batch: Iterable[AppliedLike]) -> Updates:
        diffs: dict[str, _DiffBuilder] = {}
        tops: dict[str, tuple[int, int, int, int]] = {}
        trades: list[PublicTrade] = []
        aggs: list[AggTrade] = []
        closed: dict[tuple[str, str], list[Candle]] = {}
        bars: dict[str, Bar] = {}
        symbols = self._symbols
        now = self.now
        for applied in batch:
            ts = applied.ts
            now = max(now, ts)
            executed: list[TradeExecuted] | None = None
            for event in applied.events:
                if type(event) is DepthChanged:
                    symbol = event.symbol
                    builder = diffs.get(symbol)
                    if builder is None:
                        book = self._state(symbol).book
                        builder = diffs[symbol] = _DiffBuilder(event.update_id, book)
                        tops[symbol] = _top(book)
                    builder.add(event, ts)
                elif type(event) is TradeExecuted:
                    if executed is None:
                        executed = [event]
                    else:
                        executed.append(event)
                    # onto the tape and into this stamp's bar (inline: a call per trade shows)
                    symbol = event.symbol
                    state = symbols.get(symbol) or self._state(symbol)
                    trade = PublicTrade(
                        symbol, event.trade_id, event.price, event.qty, event.quote_qty, ts,
                        event.taker_side is _SELL,
                    )
                    state.tape.add(trade)
                    bar = bars.get(symbol)
                    if bar is not None and bar.ts == ts:
                        bar.add(trade)
                    else:
                        self._new_bar(symbol, trade, bar, bars, closed)
                    trades.append(trade)
                elif type(event) is InstrumentAdded:
                    self._state(event.instrument.symbol)
            if executed is not None:
                if len(executed) == 1:  # most trading commands fill once: one aggregate
                    first = executed[0]
                    agg = AggTrade(
                        first.symbol, first.trade_id, first.price, first.qty, first.quote_qty,
                        first.trade_id, first.trade_id, ts, first.taker_side is _SELL,
                    )
                    symbols[agg.symbol].tape.add_agg(agg)
                    aggs.append(agg)
                else:
                    for agg in aggregate(executed, ts):
                        symbols[agg.symbol].tape.add_agg(agg)
                        aggs.append(agg)
        self.now = now
        for symbol, bar in bars.items():
            self._fold(symbol, bar, closed)
        return Updates(
            depth=[builder.build(symbol) for symbol, builder in diffs.items()],
            trades=trades,
            agg_trades=aggs,
            book_tickers=[
                self.book_ticker(symbol)
                for symbol, before in tops.items()
                if _top(symbols[symbol].book) != before
            ],
            klines=self._klines(closed),
            tickers=[self.ticker(symbol) for symbol in bars],
        )

    def _new_bar(
        self,
        symbol: str,
        trade: PublicTrade,
        bar: Bar | None,
        bars: dict[str, Bar],
        closed: dict[tuple[str, str], list[Candle]],
    ) -> None:
        """Start the symbol's bar at the trade's stamp, folding the previous one, if any."""
        if bar is None:
            for interval in INTERVALS:  # kline updates in first-trade order of symbols
                closed.setdefault((symbol, interval), [])
        else:
            self._fold(symbol, bar, closed)
        bars[symbol] = Bar(trade)

    def _fold(self, symbol: str, bar: Bar, closed: dict[tuple[str, str], list[Candle]]) -> None:
        """Count a bar in the symbol's 24 h window and its candles of every interval."""
        state = self._symbols[symbol]
        state.window.add_bar(bar)
        for interval, series in state.candles.items():
            done = series.add_bar(bar)
            if done is not None:
                closed[symbol, interval].append(done)

    def _klines(self, closed: dict[tuple[str, str], list[Candle]]) -> list[KlineUpdate]:
        out: list[KlineUpdate] = []
        for (symbol, interval), candles in closed.items():
            out.extend(KlineUpdate(symbol, interval, candle, closed=True) for candle in candles)
            current = self._symbols[symbol].candles[interval].current()
            if current is not None:
                out.append(KlineUpdate(symbol, interval, current, closed=False))
        return out

    def restore_book(
        self, symbol: str, update_id: int, bids: Iterable[Level], asks: Iterable[Level]
    ) -> None:
        """Start `symbol`'s book from a snapshot taken at `update_id` (recovery)."""
        self._state(symbol).book = L2Book.restore(symbol, update_id, bids, asks)

    def symbols(self) -> list[str]:
        return list(self._symbols)

    def book(self, symbol: str) -> L2Book:
        return self._symbols[symbol].book

    def depth(self, symbol: str, limit: int | None = 100) -> DepthSnapshot:
        """Top `limit` levels per side (all with None) and their `lastUpdateId`."""
        return self._symbols[symbol].book.snapshot(limit)

    def trades(
        self,
        symbol: str,
        limit: int = 500,
        from_id: int | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> list[PublicTrade]:
        return self._symbols[symbol].tape.trades(limit, from_id, start, end)

    def agg_trades(
        self,
        symbol: str,
        limit: int = 500,
        from_id: int | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> list[AggTrade]:
        return self._symbols[symbol].tape.agg_trades(limit, from_id, start, end)

    def klines(
        self,
        symbol: str,
        interval: str,
        start: int | None = None,
        end: int | None = None,
        limit: int = 500,
    ) -> list[Candle]:
        return self._symbols[symbol].candles[interval].candles(start, end, limit)

    def book_ticker(self, symbol: str) -> BookTicker:
        book = self._symbols[symbol].book
        bid_price, bid_qty, ask_price, ask_qty = _top(book)
        return BookTicker(symbol, book.update_id, bid_price, bid_qty, ask_price, ask_qty)

    def ticker(self, symbol: str) -> Ticker24h:
        """The 24 h rolling ticker for the window ending at `self.now`."""
        state = self._symbols[symbol]
        window = state.window
        window.expire(self.now)
        bid_price, bid_qty, ask_price, ask_qty = _top(state.book)
        return Ticker24h(
            symbol=symbol,
            open_time=window.window_start(self.now),
            close_time=self.now,
            open=window.open(),
            high=window.high(),
            low=window.low(),
            last=window.last,
            last_qty=window.last_qty,
            prev_close=window.prev_close,
            volume=window.volume,
            quote_volume=window.quote_volume,
            count=window.count,
            first_trade_id=window.first_trade_id(),
            last_trade_id=window.last_trade_id(),
            bid_price=bid_price,
            bid_qty=bid_qty,
            ask_price=ask_price,
            ask_qty=ask_qty,
        )
