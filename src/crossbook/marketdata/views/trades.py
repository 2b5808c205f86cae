"""Recent public trades and aggregated trades of one symbol, in bounded rings.

Aggregation rule (Binance `aggTrade`): consecutive `TradeExecuted` events of one command, on
one symbol, with the same taker order and the same price, form one aggregated trade. Other
events between them do not break a run; a trade with another taker order or price does.
Runs never cross commands, so every aggregate is complete when its command has been folded
and can be published with that batch. `agg_id` is the run's first trade id: unique and
increasing per symbol and a pure function of the trades (a rebuilt view gives the same ids),
though not contiguous; Binance clients page with `fromId`, which needs only the order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import Final, TypeVar

from crossbook.domain.enums import Side
from crossbook.domain.events import TradeExecuted
from crossbook.marketdata.views.streams import AggTrade, PublicTrade

_T = TypeVar("_T", PublicTrade, AggTrade)
_SELL: Final = Side.SELL
"""Enum members as module constants: reading `Side.SELL` from its class goes through the
enum metaclass's `__getattr__` hook on CPython 3.11 (about 40 times a global load)."""


def aggregate(trades: Sequence[TradeExecuted], ts: int) -> list[AggTrade]:
    """The aggregated trades of one command's trades (in event order)."""
    if len(trades) == 1:  # most commands that trade fill once
        return [_fold(trades, ts)]
    out: list[AggTrade] = []
    run: list[TradeExecuted] = []
    for trade in trades:
        if run and (
            trade.symbol != run[0].symbol
            or trade.taker_order_id != run[0].taker_order_id
            or trade.price != run[0].price
        ):
            out.append(_fold(run, ts))
            run = []
        run.append(trade)
    if run:
        out.append(_fold(run, ts))
    return out


def _fold(run: Sequence[TradeExecuted], ts: int) -> AggTrade:
    first = run[0]
    if len(run) == 1:
        qty, quote_qty = first.qty, first.quote_qty
    else:
        qty = sum(trade.qty for trade in run)
        quote_qty = sum(trade.quote_qty for trade in run)
    # positional: symbol, agg_id, price, qty, quote_qty, first and last trade id, ts, maker
    return AggTrade(
        first.symbol, first.trade_id, first.price, qty, quote_qty, first.trade_id,
        run[-1].trade_id, ts, first.taker_side is _SELL,
    )


def _select(
    ring: deque[_T],
    ids: Iterable[int],
    *,
    limit: int,
    from_id: int | None,
    start: int | None,
    end: int | None,
) -> list[_T]:
    if limit <= 0:
        return []
    if from_id is None and start is None and end is None:
        return list(ring)[-limit:]
    out: list[_T] = []
    for item, item_id in zip(ring, ids, strict=True):
        if from_id is not None and item_id < from_id:
            continue
        if (start is not None and item.ts < start) or (end is not None and item.ts > end):
            continue
        out.append(item)
        if len(out) == limit:
            break
    return out


class TradeTape:
    """The last `history` trades and aggregated trades, oldest first."""

    __slots__ = ("_aggs", "_trades")

    def __init__(self, history: int) -> None:
        self._trades: deque[PublicTrade] = deque(maxlen=history)
        self._aggs: deque[AggTrade] = deque(maxlen=history)

    def add(self, trade: PublicTrade) -> None:
        self._trades.append(trade)

    def add_agg(self, agg: AggTrade) -> None:
        self._aggs.append(agg)

    def trades(
        self,
        limit: int = 500,
        from_id: int | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> list[PublicTrade]:
        """Oldest first: the latest `limit`, or the first `limit` matching the filters.

        `from_id` keeps ids at or above it; `start`/`end` bound the stamp (ns, inclusive).
        """
        ids = (trade.trade_id for trade in self._trades)
        return _select(self._trades, ids, limit=limit, from_id=from_id, start=start, end=end)

    def agg_trades(
        self,
        limit: int = 500,
        from_id: int | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> list[AggTrade]:
        """As `trades`, over aggregated trades and their `agg_id`."""
        ids = (agg.agg_id for agg in self._aggs)
        return _select(self._aggs, ids, limit=limit, from_id=from_id, start=start, end=end)
