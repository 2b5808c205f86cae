"""Gateway views folded from durable batches agree with the engine, whatever the batch sizes."""

from __future__ import annotations

import itertools

import pytest

from crossbook.domain.commands import Command
from crossbook.domain.events import TradeExecuted
from crossbook.domain.values import Nanos, Seq
from crossbook.engine.exchange import Exchange
from crossbook.gateway.views import FillRecord, GatewayViews, OrderRecord
from crossbook.marketdata.views import MarketData
from crossbook.node import seed_views
from crossbook.sequencer.ports import Applied
from crossbook.sequencer.workload import order_flow, setup_commands


def _applied(symbols: int, count: int) -> tuple[Exchange, list[Applied]]:
    engine, out = Exchange(), []
    flow = itertools.islice(order_flow(11, symbols), count)
    commands: list[Command] = [*setup_commands(symbols), *flow]
    for seq, command in enumerate(commands, start=1):
        ts = 1_700_000_000_000_000_000 + seq // 50 * 1_000_000
        out.append(Applied(seq, ts, command, engine.apply(Seq(seq), Nanos(ts), command)))
    return engine, out


def _fold(applied: list[Applied], size: int) -> GatewayViews:
    views = GatewayViews(closed_keep=1_000_000)
    for start in range(0, len(applied), size):
        views.on_batch(applied[start : start + size])
    return views


def _order_state(order: OrderRecord) -> tuple[object, ...]:
    return (
        order.account, order.symbol, order.side, order.type, order.qty, order.price,
        order.filled, order.status, order.working, order.client_order_id,
    )


@pytest.mark.parametrize("symbols", [1, 3])
def test_views_match_the_engine_and_do_not_depend_on_batching(symbols: int) -> None:
    engine, applied = _applied(symbols, 6_000)
    by_one = _fold(applied, 1)
    seeded = GatewayViews()
    seed_views(engine, seeded, MarketData())

    assert by_one.last_seq == applied[-1].seq
    assert by_one.last_ts == applied[-1].ts
    assert {k: _order_state(o) for k, o in by_one.orders.items()} == {
        k: _order_state(o) for k, o in seeded.orders.items()
    }
    assert by_one.client_ids == seeded.client_ids
    for account, record in seeded.accounts.items():
        assert by_one.accounts[account].balances == record.balances
        assert set(by_one.accounts[account].open_orders) == set(record.open_orders)
    assert all(not o.status.is_open for o in by_one.closed.values())
    assert sum(len(a.fills) for a in by_one.accounts.values()) > 0

    for size in (7, 512, len(applied)):
        other = _fold(applied, size)
        assert other.orders == by_one.orders
        assert list(other.closed.items()) == list(by_one.closed.items())
        assert other.client_ids == by_one.client_ids
        for account, record in by_one.accounts.items():
            assert other.accounts[account].balances == record.balances
            assert list(other.accounts[account].fills) == list(record.fills)
        assert (other.last_seq, other.last_ts) == (by_one.last_seq, by_one.last_ts)


def test_apply_folds_one_command() -> None:
    _, applied = _applied(1, 300)
    one_by_one = GatewayViews()
    for item in applied:
        one_by_one.apply(item)
    assert one_by_one.orders == _fold(applied, 64).orders
    assert one_by_one.last_seq == applied[-1].seq


def test_fills_are_each_side_of_the_accounts_trades_newest_last() -> None:
    _, applied = _applied(1, 2_000)
    views = GatewayViews(fills_keep=50)
    views.on_batch(applied)
    trades = [
        (event, a.ts) for a in applied for event in a.events
        if isinstance(event, TradeExecuted)
    ]
    for account in views.accounts:
        expected = []
        for t, ts in trades:
            if t.maker_account == account:
                expected.append(FillRecord(
                    t.trade_id, t.symbol, t.maker_order_id, t.maker_client_order_id,
                    t.taker_side.opposite, t.price, t.qty, t.quote_qty, t.maker_fee, True, ts,
                ))
            if t.taker_account == account:
                expected.append(FillRecord(
                    t.trade_id, t.symbol, t.taker_order_id, t.taker_client_order_id,
                    t.taker_side, t.price, t.qty, t.quote_qty, t.taker_fee, False, ts,
                ))
        assert list(views.fills(account)) == expected[-50:]
    assert list(views.fills(999)) == []
