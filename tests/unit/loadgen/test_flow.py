"""The load generator's order flow: with many orders open and answers not yet back, pipelined
cancels name distinct orders (an order leaves the set when its cancel is issued), spread over
the account's oldest open orders; the mix and the seed are reproducible."""

from __future__ import annotations

from collections import Counter

from crossbook.loadgen.flow import Mix, OrderFlow

SYMBOL = "BTC-USDT"


def _flow_with_open_orders(count: int) -> OrderFlow:
    flow = OrderFlow(3, {SYMBOL: 10_000}, mix=Mix(new=0.0, cancel=1.0, amend=0.0))
    for order_id in range(1, count + 1):
        flow.accepted(1, order_id, SYMBOL, 5, 9_990)
    return flow


def test_pipelined_cancels_name_distinct_orders() -> None:
    flow = _flow_with_open_orders(500)
    cancels = [flow.next(1) for _ in range(200)]  # no answers in between, as when pipelined
    assert {a.kind for a in cancels} == {"cancel"}
    assert len({a.order_id for a in cancels}) == 200
    assert len(flow.open[1]) == 300


def test_cancels_pick_among_the_oldest_orders_at_random() -> None:
    flow = _flow_with_open_orders(500)
    picked = [flow.next(1).order_id for _ in range(50)]
    assert max(picked) <= 64 + 50  # never past the 64 oldest still open
    assert picked != sorted(picked)  # not simply oldest first


def test_amends_keep_the_order_open_and_the_flow_is_seeded() -> None:
    def run() -> list[tuple[str, int, int, int]]:
        flow = OrderFlow(9, {SYMBOL: 10_000}, mix=Mix(new=0.5, cancel=0.0, amend=0.5))
        out = []
        for n in range(300):
            action = flow.next(1)
            if action.kind == "new":
                flow.accepted(1, n + 1, action.symbol, action.qty, action.price)
            out.append((action.kind, action.order_id, action.qty, action.price))
        return out

    first = run()
    assert first == run()
    kinds = Counter(kind for kind, *_ in first)
    assert kinds["amend"] > 50
    assert kinds["new"] > 50
