"""L5, the SDK: clients that speak crossbook's wire protocols.

Contract: this package imports only `crossbook.protocol`, `crossbook.domain`, the standard
library and third-party libraries (httpx, picows). It never imports the engine,
sequencer, journal or gateway (an import-linter contract enforces it), so it can ship and
run apart from a node.

- `AsyncClient` / `Client` (`rest`): the native REST API, signed, with safe retries;
- `Stream` (`stream`): the native WebSocket channels, reconnecting by itself;
- `BookSync` / `LiveBook` (`book`): a local order book from snapshot plus diffs, with gap
  detection and automatic resync;
- `BinaryClient` (`binary`): asyncio client of the binary order-entry protocol;
- the wire models (`Order`, `Balance`, `Depth`, ...) from `crossbook.protocol.native`, and
  the exceptions (`errors`), each carrying the server's reject code.
"""

from crossbook.client.binary import BinaryClient
from crossbook.client.book import BookSync, LiveBook
from crossbook.client.calls import RetryPolicy
from crossbook.client.errors import (
    ApiError,
    CrossbookError,
    OutcomeUnknownError,
    RateLimitedError,
    RejectedError,
    TransportError,
    UnavailableError,
)
from crossbook.client.rest import AsyncClient, Client
from crossbook.client.stream import Reconnected, Stream
from crossbook.protocol.native import (
    AccountInfo,
    ApiKeyInfo,
    Balance,
    CandleInfo,
    Depth,
    Fill,
    InstrumentInfo,
    Order,
    Ticker,
    Trade,
)

__all__ = [
    "AccountInfo",
    "ApiError",
    "ApiKeyInfo",
    "AsyncClient",
    "Balance",
    "BinaryClient",
    "BookSync",
    "CandleInfo",
    "Client",
    "CrossbookError",
    "Depth",
    "Fill",
    "InstrumentInfo",
    "LiveBook",
    "Order",
    "OutcomeUnknownError",
    "RateLimitedError",
    "Reconnected",
    "RejectedError",
    "RetryPolicy",
    "Stream",
    "Ticker",
    "Trade",
    "TransportError",
    "UnavailableError",
]
