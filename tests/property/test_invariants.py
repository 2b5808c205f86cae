"""Invariants over random streams: after every command, whatever the command did.

- `check_invariants()` holds (book, indexes, holds, conservation as the engine sees it);
- conservation recomputed from the outside, from the events alone: per asset, the sum of
  every account's free + locked plus the fees charged on trades equals deposits minus
  withdrawals;
- an accepted FOK order fills completely within its command (an order that could not was
  rejected with FOK_CANNOT_FILL, whatever its self-trade mode or the icebergs it meets);
- a rejection is the command's only effect: exactly one `OrderRejected` and an unchanged
  `state_hash()`. The one documented exception is a lazy GTD expiry that runs before a
  place or amend: then the state equals what `ExpireOrders` at that stamp would leave.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import given

from crossbook.domain import commands as cmd
from crossbook.domain import events as ev
from crossbook.domain.enums import CloseReason, OrderStatus, OrderType, StpMode, TimeInForce
from crossbook.domain.rejects import Reject
from crossbook.engine.exchange import Exchange
from tests.support.factories import ALICE, BOB, venue
from tests.support.strategies import command_streams

_EXPIRY_TRAIL = (ev.OrderExpired, ev.BalanceChanged, ev.DepthChanged)


@given(command_streams())
def test_invariants_hold_after_every_command(stream: list[tuple[int, int, cmd.Command]]) -> None:
    engine = Exchange()
    for seq, ts, command in stream:
        engine.apply(seq, ts, command)
        engine.check_invariants()


@given(command_streams())
def test_balances_plus_fees_equal_net_deposits_per_asset(
    stream: list[tuple[int, int, cmd.Command]],
) -> None:
    engine = Exchange()
    net: Counter[str] = Counter()
    fees: Counter[str] = Counter()
    for seq, ts, command in stream:
        for event in engine.apply(seq, ts, command):
            if isinstance(event, ev.FundsDeposited):
                net[event.asset] += event.amount
            elif isinstance(event, ev.FundsWithdrawn):
                net[event.asset] -= event.amount
            elif isinstance(event, ev.TradeExecuted):
                inst = engine.instrument(event.symbol)
                assert inst is not None
                fees[inst.quote] += event.maker_fee + event.taker_fee
        held: Counter[str] = Counter()
        for account in engine.accounts():
            for asset, (free, locked) in engine.balances(account).items():
                assert free >= 0
                assert locked >= 0
                held[asset] += free + locked
        for asset in set(net) | set(held) | set(fees):
            assert held[asset] + fees[asset] == net[asset], asset


@given(command_streams())
def test_a_rejected_command_changes_nothing(stream: list[tuple[int, int, cmd.Command]]) -> None:
    engine = Exchange()
    for seq, ts, command in stream:
        before, snapshot = engine.state_hash(), engine.snapshot()
        events = engine.apply(seq, ts, command)
        rejections = [e for e in events if isinstance(e, ev.OrderRejected)]
        if not rejections:
            continue
        assert len(rejections) == 1
        assert events[-1] is rejections[0] or all(
            isinstance(e, _EXPIRY_TRAIL) for e in events if e is not rejections[0]
        )
        expired = [e for e in events if isinstance(e, ev.OrderExpired)]
        if not expired:
            assert events == rejections
            assert engine.state_hash() == before
            continue
        # a lazy GTD expiry ran first: the state is what ExpireOrders would have left
        assert isinstance(command, cmd.PlaceOrder | cmd.AmendOrder)
        assert all(e.reason is CloseReason.GTD_EXPIRED for e in expired)
        replayed = Exchange.restore(snapshot)
        expiry = replayed.apply(seq, ts, cmd.ExpireOrders())
        assert [e for e in events if e is not rejections[0]] == expiry
        assert engine.state_hash() == replayed.state_hash()


def _fok_outcome(events: list[ev.Event]) -> tuple[int, OrderStatus | None, bool]:
    """(order id, its last status in a trade, whether it expired) of an accepted FOK."""
    accepted = next(e for e in events if isinstance(e, ev.OrderAccepted))
    oid = accepted.order_id
    statuses = [
        e.taker_status
        for e in events
        if isinstance(e, ev.TradeExecuted) and e.taker_order_id == oid
    ]
    expired = any(isinstance(e, ev.OrderExpired) and e.order_id == oid for e in events)
    return oid, statuses[-1] if statuses else None, expired


@given(command_streams())
def test_an_accepted_fok_order_fills_completely(stream: list[tuple[int, int, cmd.Command]]) -> None:
    engine = Exchange()
    for seq, ts, command in stream:
        events = engine.apply(seq, ts, command)
        if (
            isinstance(command, cmd.PlaceOrder)
            and command.tif is TimeInForce.FOK
            and not command.type.is_stop
            and any(isinstance(e, ev.OrderAccepted) for e in events)
        ):
            _, status, expired = _fok_outcome(events)
            assert status is OrderStatus.FILLED
            assert not expired


def test_fok_market_buy_holds_for_the_path_it_takes_past_its_own_expired_makers() -> None:
    # found by the FOK property: the hold priced the taker's own ask, which STP expires
    v = venue()
    v.sell(ALICE, 1, 100)
    v.sell(BOB, 1, 100)
    v.sell(BOB, 1, 101)
    events = v.buy(ALICE, 2, type=OrderType.MARKET, tif=TimeInForce.FOK, stp=StpMode.EXPIRE_MAKER)
    assert _fok_outcome(events)[1:] == (OrderStatus.FILLED, False)


def test_fok_counts_only_the_shown_part_of_an_iceberg_ahead_of_its_own_order() -> None:
    # found by the FOK property: the iceberg refills behind the taker's own order, where
    # EXPIRE_TAKER stops the taker, so only one of the three lots is reachable
    v = venue()
    v.sell(BOB, 3, 100, visible_qty=1)
    v.sell(ALICE, 1, 100)
    events = v.buy(ALICE, 3, 100, tif=TimeInForce.FOK, stp=StpMode.EXPIRE_TAKER)
    assert [e.code for e in events if isinstance(e, ev.OrderRejected)] == [Reject.FOK_CANNOT_FILL]
    assert v.buy(ALICE, 1, 100, tif=TimeInForce.FOK, stp=StpMode.EXPIRE_TAKER)[1].qty == 1
