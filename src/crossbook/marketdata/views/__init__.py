"""L2, pure: market data views folded from durable batches.

`MarketData` (state.py) is the entry point; the stream values it returns are in streams.py.
No module here does I/O, reads a clock, logs, or imports the engine or the sequencer.
"""

from crossbook.marketdata.views.book import DepthGapError, L2Book
from crossbook.marketdata.views.candles import INTERVALS, interval_bounds
from crossbook.marketdata.views.state import AppliedLike, MarketData
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
    merge_depth_diffs,
)

__all__ = [
    "INTERVALS",
    "AggTrade",
    "AppliedLike",
    "BookTicker",
    "Candle",
    "DepthDiff",
    "DepthGapError",
    "DepthSnapshot",
    "KlineUpdate",
    "L2Book",
    "Level",
    "MarketData",
    "PublicTrade",
    "Ticker24h",
    "Updates",
    "interval_bounds",
    "merge_depth_diffs",
]
