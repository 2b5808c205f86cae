"""`GatewayContext`: the objects every route shares, and `execute`, the way to the sequencer.

A dialect module (native `/v1`, Binance `/api/v3`) registers routes as closures over one
context: it submits commands through `execute`, reads the durable `views` and `market`
data, signs in with `keys`, charges `limits` and counts into `metrics`.

`execute(command)` returns the `Applied` record once the command is durable and applied.
A full inbox answers 503 `GATEWAY_THROTTLED` at once; a stopped sequencer (journal failure,
engine bug) answers 503 `GATEWAY_UNAVAILABLE`: the outcome of a command in flight then is
unknown until the node restarts and recovers, which is exactly when a 5xx is allowed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from crossbook.domain.commands import Command
from crossbook.domain.rejects import Reject
from crossbook.gateway.auth import NativeAuth
from crossbook.gateway.http import ApiError
from crossbook.gateway.limits import RateLimiter
from crossbook.gateway.listen_keys import ListenKeyOps, ListenKeys, LocalListenKeyOps
from crossbook.gateway.metrics import Metrics
from crossbook.gateway.views import GatewayViews
from crossbook.marketdata.views import MarketData
from crossbook.sequencer.loop import Outcome, SequencerError, Throttled
from crossbook.sequencer.ports import Applied

Check = Callable[[], Awaitable[tuple[bool, str]]]
"""A readiness probe: (ok, detail)."""


class CommandBus(Protocol):
    """What the gateway needs of the sequencer (`crossbook.sequencer.loop.Sequencer`)."""

    @property
    def healthy(self) -> bool: ...

    def submit(self, command: Command) -> asyncio.Future[Applied]: ...


@runtime_checkable
class BatchBus(CommandBus, Protocol):
    """A bus that also takes a list of commands behind one future resolving with each
    command's outcome in order (`Sequencer.submit_many`); order-entry sessions use it for a
    whole socket read when their bus has it."""

    def submit_many(self, commands: Sequence[Command]) -> asyncio.Future[list[Outcome]]: ...


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class GatewayContext:
    bus: CommandBus
    views: GatewayViews
    market: MarketData
    limits: RateLimiter
    metrics: Metrics = field(default_factory=Metrics)
    now_ms: Callable[[], int] = wall_ms
    history: Any = None
    """A history reader (`crossbook.history`) for orders and fills beyond memory, or None."""
    checks: dict[str, Check] = field(default_factory=dict)
    advisory: set[str] = field(default_factory=set)
    """Names of `checks` that `/ready` shows but that do not gate readiness (history)."""
    info: dict[str, str] = field(default_factory=dict)
    """Shown by `/ready` and the OpenAPI document: version, durability, ..."""
    listen_keys: ListenKeys = field(default_factory=ListenKeys)
    """User-data stream keys, shared by the Binance REST routes and the WebSocket server."""
    listen_key_ops: ListenKeyOps = field(init=False)
    """How routes change `listen_keys`: locally, or (in a gateway worker) on the core's."""
    auth: NativeAuth = field(init=False)

    def __post_init__(self) -> None:
        self.auth = NativeAuth(self.views.keys, self.now_ms)
        self.listen_key_ops = LocalListenKeyOps(self.listen_keys, self.now_ms)

    async def execute(self, command: Command) -> Applied:
        started = time.perf_counter_ns()
        try:
            future = self.bus.submit(command)
        except Throttled as exc:
            raise ApiError(
                503, Reject.GATEWAY_THROTTLED, f"the order inbox is full, retry shortly: {exc}",
                [(b"retry-after", b"1")],
            ) from None
        except SequencerError as exc:
            raise ApiError(503, Reject.GATEWAY_UNAVAILABLE, f"not accepting: {exc}") from None
        try:
            applied = await future
        except SequencerError as exc:
            raise ApiError(
                503, Reject.GATEWAY_UNAVAILABLE, f"outcome unknown, check after restart: {exc}"
            ) from None
        self.metrics.observe_ns("sequencer", time.perf_counter_ns() - started)
        return applied
