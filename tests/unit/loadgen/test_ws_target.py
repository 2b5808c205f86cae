"""The WebSocket target of `crossbook bench` keeps the flow's open orders from the user
events alone, and counts a reconnection as the end of exact tracking (no node needed)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from crossbook.loadgen.flow import OrderFlow
from crossbook.loadgen.targets import Grid, WsTarget
from crossbook.protocol.ws import OrderEvent

SYMBOL = "C0-USDT"


def _target() -> tuple[WsTarget, OrderFlow]:
    flow = OrderFlow(7, {SYMBOL: 10_000})
    grids = {SYMBOL: Grid(Decimal("0.01"), Decimal("0.001"))}
    return WsTarget(5, "key", "secret", flow, [], "ws://127.0.0.1:1/v1/ws", grids), flow


def _event(kind: Any, order_id: int, status: str, **fields: Any) -> OrderEvent:
    return OrderEvent("orders", kind, order_id, f"c-{order_id}", SYMBOL, status, "0", 0,
                      **fields)


def test_user_events_open_amend_and_close_orders() -> None:
    target, flow = _target()
    target._event(_event("accepted", 1, "new", price="100.00", quantity="0.020"))
    target._event(_event("accepted", 2, "new", price="99.50", quantity="0.005"))
    held = flow.open[5][1]
    assert (held.symbol, held.qty, held.price) == (SYMBOL, 20, 10_000)
    target._event(_event("amended", 1, "new", price="100.25", quantity="0.010"))
    assert (held.qty, held.price) == (10, 10_025)
    target._event(_event("trade", 1, "partially_filled", price="100.25", quantity="0.004"))
    assert 1 in flow.open[5]  # a partial fill leaves it open, at its own price
    assert (held.qty, held.price) == (10, 10_025)
    target._event(_event("trade", 1, "filled", price="100.25", quantity="0.006"))
    target._event(_event("canceled", 2, "canceled"))
    assert flow.open[5] == {}


def test_exact_until_the_stream_reconnects() -> None:
    target, _ = _target()
    assert target.exact
    target.connections = 1  # the first connection is announced as well
    assert target.exact
    target.connections = 2
    assert not target.exact
