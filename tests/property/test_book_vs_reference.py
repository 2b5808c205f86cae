"""The engine against the slow reference: identical events for every command of a stream.

Compared features: limit GTC/IOC/FOK/GTD, post-only, icebergs, market orders by base size and
by quote amount, stop-loss and take-profit (market and limit) with cascades, every
self-trade prevention mode, amend (keep priority and cancel-replace), cancel by id and by
client id, cancel all, GTD expiry by command and lazily, halt/resume, fee changes, deposits
and withdrawals, holds, fees and settlement, and every rejection code they can produce.
"""

from __future__ import annotations

from hypothesis import given

from crossbook.domain import commands as cmd
from crossbook.domain import events as ev
from crossbook.domain.enums import Side
from crossbook.engine.exchange import Exchange
from tests.support.reference import ReferenceExchange
from tests.support.strategies import command_streams


def _difference(
    seq: int, command: cmd.Command, engine: list[ev.Event], reference: list[ev.Event]
) -> str:
    lines = [f"command {seq}: {command}"]
    for i in range(max(len(engine), len(reference))):
        mine = engine[i] if i < len(engine) else None
        theirs = reference[i] if i < len(reference) else None
        mark = "  " if mine == theirs else "!!"
        lines.append(f"{mark} engine    {mine}\n   reference {theirs}")
    return "\n".join(lines)


@given(command_streams())
def test_engine_events_equal_the_reference_for_every_command(
    stream: list[tuple[int, int, cmd.Command]],
) -> None:
    engine, reference = Exchange(), ReferenceExchange()
    for seq, ts, command in stream:
        got = engine.apply(seq, ts, command)
        want = reference.apply(seq, ts, command)
        assert got == want, _difference(seq, command, got, want)


@given(command_streams())
def test_engine_queries_agree_with_the_reference_state_after_a_stream(
    stream: list[tuple[int, int, cmd.Command]],
) -> None:
    engine, reference = Exchange(), ReferenceExchange()
    for seq, ts, command in stream:
        engine.apply(seq, ts, command)
        reference.apply(seq, ts, command)
    for symbol in reference.instruments:
        bids, asks = engine.depth(symbol)
        for side, levels in ((Side.BUY, bids), (Side.SELL, asks)):
            queue = reference.side_queue(symbol, side)
            prices = list(dict.fromkeys(o.price for o in queue))
            assert levels == [reference.level(symbol, side, p) for p in prices]
            for price in prices:
                in_engine = [o.order_id for o in engine.orders_at(symbol, side, price)]
                assert in_engine == [o.order_id for o in queue if o.price == price]
    for account in reference.fee_rates:
        want = {
            asset: (bal[0], bal[1])
            for (owner, asset), bal in sorted(reference.balances.items())
            if owner == account
        }
        got = {asset: bal for asset, bal in engine.balances(account).items() if bal != (0, 0)}
        assert got == {asset: bal for asset, bal in want.items() if bal != (0, 0)}
        open_ids = sorted(o.order_id for o in engine.open_orders(account))
        assert open_ids == sorted(o.order_id for o in reference.open_orders if o.account == account)
