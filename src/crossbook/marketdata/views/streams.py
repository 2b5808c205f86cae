"""Stream updates and snapshots: the typed values a publisher encodes once per stream.

Every value is a frozen msgspec struct of integers (ticks, lots, asset units, nanoseconds);
decimal rendering and field naming for a wire format belong to the gateway. A level is
`(price, qty, order_count)`, the same shape as `DepthChanged`: absolute totals at that price,
a qty of 0 meaning the level is gone.

Depth diffs and update ids: one counter per symbol grows by one per command that changed the
book. A `DepthDiff` covers the ids `first_update_id..last_update_id` (Binance `U`/`u`) and
holds, for every price changed anywhere in that range, its total after the last of those
commands. Consecutive diffs of one symbol are gapless: `U == previous u + 1`.
`merge_depth_diffs` joins consecutive diffs into one (100 ms batching) keeping `U` of the
first and `u` of the last; it refuses diffs that do not chain, which would hide a gap.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

Level = tuple[int, int, int]
"""`(price, qty, order_count)`; qty 0 removes the level."""


class _Struct(msgspec.Struct, frozen=True, gc=False):
    pass


class DepthDiff(_Struct, frozen=True):
    symbol: str
    first_update_id: int
    """Binance `U`."""
    last_update_id: int
    """Binance `u`."""
    ts: int
    """Stamp (ns) of the last command covered: the event time."""
    bids: list[Level]
    """Descending by price."""
    asks: list[Level]
    """Ascending by price."""


class DepthSnapshot(_Struct, frozen=True):
    symbol: str
    last_update_id: int
    """The book counter the levels reflect (REST `lastUpdateId`)."""
    bids: list[Level]
    asks: list[Level]


class PublicTrade(_Struct, frozen=True):
    symbol: str
    trade_id: int
    price: int
    qty: int
    quote_qty: int
    ts: int
    buyer_is_maker: bool


class AggTrade(_Struct, frozen=True):
    """Consecutive fills of one taker order at one price within one command.

    `agg_id` equals `first_trade_id`: unique and increasing per symbol, derived from the
    trades alone so it survives a rebuild, though not contiguous.
    """

    symbol: str
    agg_id: int
    price: int
    qty: int
    quote_qty: int
    first_trade_id: int
    last_trade_id: int
    ts: int
    buyer_is_maker: bool


class BookTicker(_Struct, frozen=True):
    """Best bid and ask; a price and qty of 0 mean that side is empty."""

    symbol: str
    update_id: int
    bid_price: int
    bid_qty: int
    ask_price: int
    ask_qty: int


class Candle(_Struct, frozen=True):
    open_time: int
    """Start of the interval (ns)."""
    close_time: int
    """Last nanosecond of the interval: next open time minus one."""
    open: int
    high: int
    low: int
    close: int
    volume: int
    """Base traded, in lots."""
    quote_volume: int
    """Quote traded, in quote units."""
    count: int
    taker_buy_volume: int
    taker_buy_quote_volume: int
    first_trade_id: int
    last_trade_id: int


class KlineUpdate(_Struct, frozen=True):
    symbol: str
    interval: str
    candle: Candle
    closed: bool
    """True once a later trade has opened the next candle of this interval."""


class Ticker24h(_Struct, frozen=True):
    """Rolling 24 h statistics; see `crossbook.marketdata.views.ticker` for the window."""

    symbol: str
    open_time: int
    close_time: int
    open: int
    high: int
    low: int
    last: int
    last_qty: int
    prev_close: int
    volume: int
    quote_volume: int
    count: int
    first_trade_id: int
    """-1 when no trade is in the window (as Binance)."""
    last_trade_id: int
    bid_price: int
    bid_qty: int
    ask_price: int
    ask_qty: int


class Updates(_Struct, frozen=True):
    """Everything one batch changed, per stream, in event order within each list."""

    depth: list[DepthDiff]
    """At most one per symbol."""
    trades: list[PublicTrade]
    agg_trades: list[AggTrade]
    book_tickers: list[BookTicker]
    """At most one per symbol: the final top of book when it differs from the batch start."""
    klines: list[KlineUpdate]
    """Closed candles first, then the open candle, per symbol and interval touched."""
    tickers: list[Ticker24h]
    """One per symbol that traded in the batch."""

    @property
    def empty(self) -> bool:
        return not (
            self.depth
            or self.trades
            or self.agg_trades
            or self.book_tickers
            or self.klines
            or self.tickers
        )


def merge_depth_diffs(diffs: Sequence[DepthDiff]) -> DepthDiff:
    """Join consecutive diffs of one symbol into one covering all their update ids.

    Raises `ValueError` if `diffs` is empty, mixes symbols, or does not chain
    (`U == previous u + 1`).
    """
    if not diffs:
        raise ValueError("nothing to merge")
    first = diffs[0]
    if len(diffs) == 1:
        return first
    bids: dict[int, Level] = {}
    asks: dict[int, Level] = {}
    previous: DepthDiff | None = None
    for diff in diffs:
        if diff.symbol != first.symbol:
            raise ValueError(f"cannot merge depth of {diff.symbol} into {first.symbol}")
        if previous is not None and diff.first_update_id != previous.last_update_id + 1:
            raise ValueError(
                f"{diff.symbol}: diff {diff.first_update_id}..{diff.last_update_id} does not "
                f"follow {previous.last_update_id}"
            )
        bids.update((level[0], level) for level in diff.bids)
        asks.update((level[0], level) for level in diff.asks)
        previous = diff
    last = diffs[-1]
    return DepthDiff(
        symbol=first.symbol,
        first_update_id=first.first_update_id,
        last_update_id=last.last_update_id,
        ts=last.ts,
        bids=sorted(bids.values(), key=lambda level: level[0], reverse=True),
        asks=sorted(asks.values(), key=lambda level: level[0]),
    )
