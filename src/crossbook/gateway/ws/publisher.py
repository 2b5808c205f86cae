"""`Publisher`: the sequencer sink that folds durable batches into market data and fans them out.

It replaces `MarketData` as the sink (it calls `market.apply(batch)` itself, so the REST
views and the streams see the same fold) and, per batch, encodes each update once per
subscribed topic:

- real time (every durable batch): native depth `realtime`, trades, aggTrades, book ticker,
  candles, 24 h ticker, user events (`crossbook.gateway.ws.user`);
- every 100 ms / 1000 ms (`tick()`, driven by the server): the diffs of the interval merged
  into one (`merge_depth_diffs`, so `U` = previous `u` + 1 still holds), flushed early when
  `max_batch` updates are pending; partial depth (`@depthN`) when the book changed.

Topic names: Binance streams are the stream names themselves (`btcusdt@depth@100ms`); native
ones are `depth:BTC-USDT:realtime`, `trades:BTC-USDT`, `book_ticker:..`, `ticker:..`,
`candles:BTC-USDT:1m`. Binance symbols are the lower-case base and quote run together.
Diffs are only kept for an interval while someone subscribes to it; a new subscriber syncs
from a snapshot taken after its subscription, which any later merged diff overlaps or follows.
"""

from __future__ import annotations

from collections.abc import Sequence

from crossbook.gateway.views import GatewayViews, InstrumentRecord
from crossbook.gateway.ws import encode
from crossbook.gateway.ws.fanout import Hub, Mode, Topic
from crossbook.gateway.ws.user import UserEvents
from crossbook.marketdata.views import DepthDiff, MarketData, Updates, merge_depth_diffs
from crossbook.sequencer.ports import Applied

PARTIAL_LEVELS = (5, 10, 20)
SLOW_EVERY = 10
"""1000 ms intervals in 100 ms ticks."""


class Publisher:
    def __init__(self, hub: Hub, market: MarketData, views: GatewayViews,
                 user: UserEvents) -> None:
        self.hub = hub
        self.market = market
        self.views = views
        self.user = user
        self._names: dict[str, str] = {}
        """Binance lower-case name → native symbol."""
        self._pending: tuple[dict[str, list[DepthDiff]], dict[str, list[DepthDiff]]] = ({}, {})
        self._changed: tuple[set[str], set[str]] = (set(), set())
        self._ticks = 0

    # -- names --------------------------------------------------------------------------------

    def binance_name(self, symbol: str) -> str:
        inst = self.views.instruments[symbol].instrument
        return (inst.base + inst.quote).lower()

    def native_symbol(self, name: str) -> str | None:
        """The native symbol of a Binance lower-case name, or None."""
        found = self._names.get(name)
        if found is None:
            self._names = {self.binance_name(s): s for s in self.views.instruments}
            found = self._names.get(name)
        return found

    def record(self, symbol: str) -> InstrumentRecord:
        return self.views.instruments[symbol]

    def depth_topic(self, name: str, symbol: str, binance: bool) -> Topic:
        """The DIFF topic `name`, with a resync snapshot of `symbol`'s whole book."""
        scales = self.record(symbol).scales
        upper = self.binance_name(symbol).upper()

        def resync() -> bytes:
            snap = self.market.depth(symbol, None)
            if binance:
                return encode.b_resync(upper, scales, snap, self.market.now)
            return encode.n_snapshot(symbol, scales, snap, resync=True)

        return self.hub.topic(name, Mode.DIFF, resync)

    # -- the sink -----------------------------------------------------------------------------

    def on_batch(self, batch: Sequence[Applied]) -> None:
        updates = self.market.apply(batch)
        hub = self.hub
        hub.note_batch(len(batch))
        self.user.on_batch(batch)
        if hub.topics and not updates.empty:
            self._publish(updates)
        hub.distribute()  # this batch's messages go out before the replies to its commands

    def _publish(self, updates: Updates) -> None:
        hub = self.hub
        topics = hub.topics
        views = self.views
        max_batch = hub.limits.max_batch
        for diff in updates.depth:
            symbol = diff.symbol
            scales = views.instruments[symbol].scales
            name = self.binance_name(symbol)
            topic = topics.get(f"depth:{symbol}:realtime")
            if topic is not None:
                hub.publish(topic, encode.n_depth(symbol, scales, diff))
            for speed, pending, changed in zip(
                ("100ms", "1000ms"), self._pending, self._changed, strict=True
            ):
                if self._wanted(name, symbol, speed, diff_only=False):
                    changed.add(symbol)
                if self._wanted(name, symbol, speed, diff_only=True):
                    queue = pending.setdefault(symbol, [])
                    queue.append(diff)
                    if len(queue) >= max_batch:
                        self._flush_depth(symbol, speed, pending.pop(symbol))
        for trade in updates.trades:
            self._emit(trade.symbol, "trade", "trades", trade,
                       encode.b_trade, encode.n_trade)
        for agg in updates.agg_trades:
            topic = topics.get(f"{self.binance_name(agg.symbol)}@aggTrade")
            if topic is not None:
                record = self.record(agg.symbol)
                hub.publish(topic, encode.b_agg_trade(
                    self.binance_name(agg.symbol).upper(), record.scales, agg))
        for ticker in updates.book_tickers:
            self._emit(ticker.symbol, "bookTicker", "book_ticker", ticker,
                       encode.b_book_ticker, encode.n_book_ticker)
        for stats in updates.tickers:
            self._emit(stats.symbol, "ticker", "ticker", stats,
                       encode.b_ticker, encode.n_ticker)
        for kline in updates.klines:
            symbol, scales = kline.symbol, self.record(kline.symbol).scales
            name = self.binance_name(symbol)
            topic = topics.get(f"{name}@kline_{kline.interval}")
            if topic is not None:
                hub.publish(topic, encode.b_kline(name.upper(), scales, kline, self.market.now))
            topic = topics.get(f"candles:{symbol}:{kline.interval}")
            if topic is not None:
                hub.publish(topic, encode.n_candle(symbol, scales, kline))

    def _emit(self, symbol: str, stream: str, channel: str, value: object,
              binance: object, native: object) -> None:
        topics, hub = self.hub.topics, self.hub
        name = self.binance_name(symbol)
        scales = self.record(symbol).scales
        topic = topics.get(f"{name}@{stream}")
        if topic is not None:
            hub.publish(topic, binance(name.upper(), scales, value))  # type: ignore[operator]
        topic = topics.get(f"{channel}:{symbol}")
        if topic is not None:
            hub.publish(topic, native(symbol, scales, value))  # type: ignore[operator]

    def _wanted(self, name: str, symbol: str, speed: str, diff_only: bool) -> bool:
        topics = self.hub.topics
        if diff_only:
            if speed == "100ms":
                return f"{name}@depth@100ms" in topics or f"depth:{symbol}:100ms" in topics
            return f"{name}@depth" in topics or f"{name}@depth@1000ms" in topics
        suffix = "@100ms" if speed == "100ms" else ""
        return any(
            f"{name}@depth{n}{suffix}" in topics
            or (not suffix and f"{name}@depth{n}@1000ms" in topics)
            for n in PARTIAL_LEVELS
        )

    # -- timers -------------------------------------------------------------------------------

    def tick(self) -> None:
        """Every 100 ms: flush the 100 ms interval, and every tenth call the 1000 ms one."""
        self._ticks += 1
        self._flush_interval(0, "100ms")
        if self._ticks % SLOW_EVERY == 0:
            self._flush_interval(1, "1000ms")
        self.hub.distribute()

    def _flush_interval(self, index: int, speed: str) -> None:
        pending, changed = self._pending[index], self._changed[index]
        for symbol, diffs in list(pending.items()):
            self._flush_depth(symbol, speed, diffs)
        pending.clear()
        for symbol in changed:
            self._partial(symbol, speed)
        changed.clear()

    def _flush_depth(self, symbol: str, speed: str, diffs: list[DepthDiff]) -> None:
        if not diffs:
            return
        merged = merge_depth_diffs(diffs)
        hub, topics = self.hub, self.hub.topics
        scales = self.record(symbol).scales
        name = self.binance_name(symbol)
        names = (f"{name}@depth@100ms",) if speed == "100ms" else (
            f"{name}@depth", f"{name}@depth@1000ms")
        payload = b""
        for topic_name in names:
            topic = topics.get(topic_name)
            if topic is not None:
                payload = payload or encode.b_depth(name.upper(), scales, merged)
                hub.publish(topic, payload)
        topic = topics.get(f"depth:{symbol}:{speed}")
        if topic is not None:
            hub.publish(topic, encode.n_depth(symbol, scales, merged))

    def _partial(self, symbol: str, speed: str) -> None:
        hub, topics = self.hub, self.hub.topics
        scales = self.record(symbol).scales
        name = self.binance_name(symbol)
        suffixes = ("@100ms",) if speed == "100ms" else ("", "@1000ms")
        for levels in PARTIAL_LEVELS:
            payload = b""
            for suffix in suffixes:
                topic = topics.get(f"{name}@depth{levels}{suffix}")
                if topic is not None:
                    payload = payload or encode.b_partial(
                        scales, self.market.depth(symbol, levels))
                    hub.publish(topic, payload)
