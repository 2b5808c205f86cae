"""The gateway's view of the history database: orders, fills and candles past memory.

The durable views (`GatewayViews`, `MarketData`) hold what happened since the node started,
bounded (`closed_keep` closed orders, `fills_keep` fills per account, `candle_history`
candles per interval). When a request reaches past that, a route asks `HistoryReader`,
which reads the history database (`crossbook.history`) and answers in the gateway's own
record types, so a dialect renders both sources the same way:

- `orders(...)` -> `views.OrderRecord`, `fills(...)` -> `views.FillRecord`,
  `klines(...)` -> `marketdata` `Candle` for any interval name of `INTERVALS`.
- `merge_orders`, `merge_fills`, `merge_candles` combine memory with stored rows. Memory
  wins where both have a key: the database is a read model that may lag the views by a few
  batches (or more while it is down), never lead them.
- `reaches_past(found, limit, *bounds)`: the rule every route uses to decide whether to ask
  the database at all: memory gave fewer than `limit` results, or the request names a
  lower bound (`from_id`, `start`), which memory may not hold.

Times are nanoseconds, like the views. Amounts are integers; dialects format them.

Also here: `HistoryMonitor`, the `/ready` check and the `/metrics` collector of the
projector (lag, health, pending, written), registered by the node.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from msgspec.structs import replace
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from crossbook.domain.enums import Liquidity, OrderStatus, OrderType, Side, StpMode, TimeInForce
from crossbook.gateway.http import bad_request
from crossbook.gateway.views import FillRecord, OrderRecord
from crossbook.history import queries
from crossbook.history.projector import ProjectorStatus
from crossbook.history.store import HistoryStore
from crossbook.marketdata.views.candles import DAY, FIXED_INTERVALS, interval_bounds
from crossbook.marketdata.views.streams import Candle

_NS_PER_MS = 1_000_000


def reaches_past(found: int, limit: int, *bounds: int | None) -> bool:
    """Whether a query must consult the database: memory came short, or a lower bound."""
    return found < limit or any(bound is not None for bound in bounds)


def _order(row: queries.OrderRecord) -> OrderRecord:
    return OrderRecord(
        row.order_id, row.account, row.symbol, Side(row.side), OrderType(row.type),
        TimeInForce(row.tif), row.qty, row.price, row.quote_qty, row.stop_price, row.expire_ts,
        bool(row.post_only), row.visible_qty, StpMode(row.stp), row.client_order_id,
        row.filled, OrderStatus(row.status), True, row.created_ts, row.updated_ts,
    )  # fmt: skip


class HistoryReader:
    """Reads of the history database in gateway records (see the module docstring)."""

    def __init__(self, store: HistoryStore) -> None:
        self.store = store

    async def orders(
        self,
        account: int,
        *,
        symbol: str | None = None,
        start: int | None = None,
        end: int | None = None,
        from_id: int | None = None,
        limit: int = 500,
        newest_first: bool = False,
    ) -> list[OrderRecord]:
        """Orders in their stored state; `end` is exclusive. Oldest first from `from_id`,
        or the newest `limit`, newest first, with `newest_first`."""
        rows = await queries.orders(
            self.store, account, symbol=symbol, start=start, end=end, from_id=from_id,
            limit=limit, newest_first=newest_first,
        )  # fmt: skip
        return [_order(row) for row in rows]

    async def fills(
        self,
        account: int,
        *,
        symbol: str | None = None,
        order_id: int | None = None,
        start: int | None = None,
        end: int | None = None,
        from_id: int | None = None,
        limit: int = 500,
        newest_first: bool = False,
    ) -> list[FillRecord]:
        """Fills with their fees and client order ids; ordering as `orders`."""
        rows = await queries.fills(
            self.store, account, symbol=symbol, order_id=order_id, start=start, end=end,
            from_id=from_id, limit=limit, newest_first=newest_first,
        )  # fmt: skip
        wanted: dict[str, list[int]] = {}
        for row in rows:
            wanted.setdefault(row.symbol, []).append(row.order_id)
        client_ids: dict[tuple[str, int], str] = {}
        for name, ids in wanted.items():
            for order, client_id in (await queries.client_order_ids(self.store, name, ids)).items():
                client_ids[name, order] = client_id
        maker = int(Liquidity.MAKER)
        return [
            FillRecord(
                row.trade_id, row.symbol, row.order_id,
                client_ids.get((row.symbol, row.order_id), ""), Side(row.side), row.price,
                row.qty, row.quote_qty, row.fee, row.liquidity == maker, row.ts,
            )
            for row in rows
        ]

    async def klines(
        self,
        symbol: str,
        interval: str,
        *,
        start: int | None = None,
        end: int | None = None,
        limit: int = 500,
    ) -> list[Candle]:
        """Candles of a Binance interval name whose open time is in `[start, end]` (both
        inclusive, as Binance): the first `limit` from `start`, else the latest `limit`.

        Stored candles are one minute wide and carry the taker-buy split;
        `1s` candles are computed from stored trades."""
        latest = start is None
        end_excl = None if end is None else end + 1
        length = FIXED_INTERVALS.get(interval)
        if length is not None:
            found = await queries.candles(
                self.store, symbol, length, start=start, end=end_excl, limit=limit,
                latest=latest,
            )  # fmt: skip
            return [_candle(c, c.open_ts, c.open_ts + length) for c in found]
        # calendar intervals (1w, 1M) start on day boundaries: merge day candles into them
        if start is not None:  # the first candle opening at or after `start`
            opens, next_open = interval_bounds(interval, start)
            start = start if opens == start else next_open
        if end is not None:  # the candle opening at or before `end`, whole
            end_excl = interval_bounds(interval, end)[1]
        days = await queries.candles(
            self.store, symbol, DAY, start=start, end=end_excl,
            limit=min(queries.MAX_LIMIT, limit * (7 if interval == "1w" else 31)),
            latest=latest,
        )  # fmt: skip
        out: list[Candle] = []
        for c in days:
            open_ts, next_open = interval_bounds(interval, c.open_ts)
            if out and out[-1].open_time == open_ts:
                out[-1] = merge_candles([out[-1]], [_candle(c, open_ts, next_open)])[0]
            else:
                out.append(_candle(c, open_ts, next_open))
        return out[-limit:] if latest else out[:limit]


def _candle(c: queries.Candle, open_ts: int, next_open: int) -> Candle:
    return Candle(
        open_time=open_ts, close_time=next_open - 1, open=c.open, high=c.high, low=c.low,
        close=c.close, volume=c.volume, quote_volume=c.quote_volume, count=c.trades,
        taker_buy_volume=c.taker_buy_volume, taker_buy_quote_volume=c.taker_buy_quote_volume,
        first_trade_id=c.first_trade_id, last_trade_id=c.last_trade_id,
    )  # fmt: skip


def merge_orders(memory: Iterable[OrderRecord], stored: Iterable[OrderRecord]) -> list[OrderRecord]:
    """Memory and stored orders by order id, memory winning, ascending by order id. An order
    seeded into memory at recovery has no stamps (0): the stored ones fill them in."""
    by_id = {o.order_id: o for o in stored}
    for order in memory:
        old = by_id.get(order.order_id)
        by_id[order.order_id] = order if old is None or order.created_ts else replace(
            order, created_ts=old.created_ts, updated_ts=order.updated_ts or old.updated_ts
        )
    return [by_id[k] for k in sorted(by_id)]


def merge_fills(memory: Iterable[FillRecord], stored: Iterable[FillRecord]) -> list[FillRecord]:
    """Memory and stored fills by (trade id, order id), memory winning, ascending."""
    by_key = {(f.trade_id, f.order_id): f for f in stored}
    by_key.update(((f.trade_id, f.order_id), f) for f in memory)
    return [by_key[k] for k in sorted(by_key)]


def merge_candles(stored: Sequence[Candle], memory: Sequence[Candle]) -> list[Candle]:
    """Stored candles, then memory's, ascending by open time.

    After a restart memory's first candle of an interval holds only the trades since the
    start; the stored one of the same interval holds those before (and, when the database
    has caught up, some or all of the same). Trade ids tell them apart: disjoint halves are
    summed; otherwise the candle with the later last trade wins (a best effort while the
    database lags inside that one interval)."""
    by_open: dict[int, Candle] = {c.open_time: c for c in stored}
    for m in memory:
        d = by_open.get(m.open_time)
        if d is None or m.first_trade_id > d.last_trade_id or d.first_trade_id > m.last_trade_id:
            by_open[m.open_time] = m if d is None else _sum(d, m)
        elif m.last_trade_id >= d.last_trade_id:
            by_open[m.open_time] = m if m.first_trade_id <= d.first_trade_id else _sum_overlap(d, m)
    return [by_open[k] for k in sorted(by_open)]


def _sum(a: Candle, b: Candle) -> Candle:
    first, last = (a, b) if a.first_trade_id <= b.first_trade_id else (b, a)
    return Candle(
        open_time=a.open_time, close_time=a.close_time, open=first.open,
        high=max(a.high, b.high), low=min(a.low, b.low), close=last.close,
        volume=a.volume + b.volume, quote_volume=a.quote_volume + b.quote_volume,
        count=a.count + b.count, taker_buy_volume=a.taker_buy_volume + b.taker_buy_volume,
        taker_buy_quote_volume=a.taker_buy_quote_volume + b.taker_buy_quote_volume,
        first_trade_id=first.first_trade_id, last_trade_id=last.last_trade_id,
    )  # fmt: skip


def _sum_overlap(stored: Candle, memory: Candle) -> Candle:
    # stored began earlier and memory ends later; the overlap's volume is not known, so take
    # the earlier open and the extremes of both, and memory's totals (a lower bound).
    return Candle(
        open_time=memory.open_time, close_time=memory.close_time, open=stored.open,
        high=max(stored.high, memory.high), low=min(stored.low, memory.low), close=memory.close,
        volume=max(stored.volume, memory.volume),
        quote_volume=max(stored.quote_volume, memory.quote_volume),
        count=max(stored.count, memory.count), taker_buy_volume=memory.taker_buy_volume,
        taker_buy_quote_volume=memory.taker_buy_quote_volume,
        first_trade_id=stored.first_trade_id, last_trade_id=memory.last_trade_id,
    )  # fmt: skip


class HistoryMonitor(Collector):
    """The projector's state for `/ready` (`check`) and `/metrics` (a collector).

    Readiness: the history component is shown with its lag and last error, and is `ok`
    while the projector is healthy; the node registers it as advisory, so a database
    outage never makes the node unready: trading does not depend on it."""

    def __init__(self, status: Callable[[], ProjectorStatus], target: str) -> None:
        self.status = status
        self.target = target

    async def check(self) -> tuple[bool, str]:
        s = self.status()
        state = "catching up" if s.catching_up else "live"
        detail = (f"{self.target}: {state}, lag {s.lag} events "
                  f"(projected seq {s.projected_seq} of {s.head_seq})")  # fmt: skip
        if s.gap:
            return False, detail + "; gap: the database is behind and cannot catch up"
        if not s.healthy:
            return False, detail + f"; retrying after {s.failures} failures: {s.last_error}"
        return True, detail

    def collect(self) -> Iterator[Metric]:
        s = self.status()
        values: list[tuple[str, str, Any]] = [
            ("crossbook_history_lag", "Sequence numbers not yet in the history database",
             s.lag),
            ("crossbook_history_projected_seq", "Last sequence in the history database",
             s.projected_seq),
            ("crossbook_history_pending", "Records queued for the history database",
             s.pending),
            ("crossbook_history_healthy", "1 while history writes succeed",
             1.0 if s.healthy and not s.gap else 0.0),
            ("crossbook_history_catching_up", "1 while replaying the journal into history",
             1.0 if s.catching_up else 0.0),
        ]  # fmt: skip
        for name, doc, value in values:
            yield GaugeMetricFamily(name, doc, value=float(value))
        yield CounterMetricFamily("crossbook_history_events_written",
                                  "Events written to the history database",
                                  value=s.events_written)  # fmt: skip
        yield CounterMetricFamily("crossbook_history_write_failures",
                                  "Failed history writes (each retried)", value=s.failures)


def optional_int(query: dict[str, str], name: str) -> int | None:
    """A non-negative integer query parameter, or None when absent (400 when malformed)."""
    text = query.get(name)
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise bad_request(f"{name} must be an integer") from None
    if value < 0:
        raise bad_request(f"{name} must not be negative")
    return value


def time_range(query: dict[str, str]) -> tuple[int | None, int | None]:
    """`start_time`/`end_time` (ms, both inclusive) as `[start, end)` in nanoseconds."""
    start, end = optional_int(query, "start_time"), optional_int(query, "end_time")
    if start is not None and end is not None and start > end:
        raise bad_request("start_time is after end_time")
    return (
        None if start is None else start * _NS_PER_MS,
        None if end is None else (end + 1) * _NS_PER_MS,
    )
