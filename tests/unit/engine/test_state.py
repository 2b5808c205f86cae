"""Snapshot and restore, the state hash, determinism, invariants, and the lifecycle table."""

from __future__ import annotations

import pytest

from crossbook.domain import commands as cmd
from crossbook.domain.enums import OrderStatus, OrderType, StpMode, TimeInForce
from crossbook.engine.exchange import Exchange, InvariantError
from crossbook.engine.lifecycle import TRANSITIONS, Step, advance
from tests.support.factories import ALICE, BOB, CAROL, Venue, venue


def _eventful(v: Venue) -> None:
    """Resting orders of every kind, a waiting stop, a GTD order, trades, fees."""
    v.do(cmd.SetFees(ALICE, -2, 10))  # type: ignore[arg-type]
    v.sell(ALICE, 10, 105, visible_qty=3, client_order_id="berg")
    v.sell(BOB, 4, 104)
    v.buy(CAROL, 3, 99, tif=TimeInForce.GTD, expire_ts=50_000)
    v.buy(BOB, 5, 98, stp=StpMode.DECREMENT)
    v.buy(CAROL, 6, 105)
    v.sell(CAROL, 2, type=OrderType.STOP_LOSS, stop_price=97)
    v.buy(BOB, 2, 120, type=OrderType.TAKE_PROFIT_LIMIT, stop_price=90)


def _continue(v: Venue) -> list[object]:
    """The same tail of commands, returning all their events."""
    out: list[object] = []
    out += v.sell(ALICE, 4, 99)
    out += v.buy(BOB, 8, 106)
    out += v.expire(60_000)
    out += v.sell(BOB, 3, type=OrderType.MARKET)
    out += v.cancel_all(ALICE)
    return out


def test_restore_of_a_snapshot_gives_the_same_state_hash() -> None:
    v = venue()
    _eventful(v)
    restored = Exchange.restore(v.ex.snapshot())
    assert restored.state_hash() == v.ex.state_hash()
    assert restored.last_seq == v.ex.last_seq
    assert restored.snapshot() == v.ex.snapshot()
    restored.check_invariants()


def test_a_restored_exchange_continues_exactly_like_the_original() -> None:
    v = venue()
    _eventful(v)
    twin = Venue(Exchange.restore(v.ex.snapshot()))
    twin.ts = v.ts
    assert _continue(twin) == _continue(v)
    assert twin.ex.state_hash() == v.ex.state_hash()
    assert twin.ex.depth("BTC-USD") == v.ex.depth("BTC-USD")
    assert twin.ex.balances(ALICE) == v.ex.balances(ALICE)


def test_replaying_the_same_commands_gives_the_same_events_and_hash() -> None:
    v = venue()
    _eventful(v)
    _continue(v)
    replay = Exchange()
    events = [replay.apply(seq, ts, c) for seq, ts, c in v.log]
    original = Exchange()
    assert events == [original.apply(seq, ts, c) for seq, ts, c in v.log]
    assert replay.state_hash() == v.ex.state_hash()


def test_the_state_hash_ignores_the_sequence_number_but_not_the_state() -> None:
    v = venue()
    before = v.ex.state_hash()
    v.do(cmd.CancelAllOrders(ALICE, "BTC-USD"))  # type: ignore[arg-type]
    assert v.ex.state_hash() == before
    v.buy(ALICE, 1, 100)
    assert v.ex.state_hash() != before


def test_check_invariants_catches_a_corrupted_hold() -> None:
    v = venue()
    v.buy(ALICE, 1, 100)
    v.ex.accounts_[ALICE].balances["USD"].locked += 1
    with pytest.raises(InvariantError, match="locked"):
        v.ex.check_invariants()


def test_check_invariants_catches_money_created_from_nothing() -> None:
    v = venue()
    v.ex.accounts_[BOB].balances["BTC"].free += 1
    with pytest.raises(InvariantError, match="conserved"):
        v.ex.check_invariants()


def test_check_invariants_catches_a_crossed_book() -> None:
    v = venue()
    v.buy(ALICE, 1, 100)
    v.sell(BOB, 1, 101)
    ask = v.ex.books["BTC-USD"].ask_levels[0]
    ask.price = ask.key = 100
    ask.orders()[0].price = 100
    with pytest.raises(InvariantError, match="crossed"):
        v.ex.check_invariants()


OPEN = (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)
CLOSED = (
    OrderStatus.FILLED,
    OrderStatus.CANCELED,
    OrderStatus.REJECTED,
    OrderStatus.EXPIRED,
    OrderStatus.EXPIRED_IN_MATCH,
)
TARGETS = {
    Step.PARTIAL_FILL: OrderStatus.PARTIALLY_FILLED,
    Step.FILL: OrderStatus.FILLED,
    Step.CANCEL: OrderStatus.CANCELED,
    Step.EXPIRE: OrderStatus.EXPIRED,
    Step.EXPIRE_IN_MATCH: OrderStatus.EXPIRED_IN_MATCH,
}


@pytest.mark.parametrize("status", OPEN)
@pytest.mark.parametrize("step", list(Step))
def test_an_open_order_moves_by_every_step_to_its_target(status: OrderStatus, step: Step) -> None:
    assert advance(status, step) is TARGETS[step]


@pytest.mark.parametrize("status", CLOSED)
@pytest.mark.parametrize("step", list(Step))
def test_a_closed_order_cannot_move_and_trying_is_an_invariant_error(
    status: OrderStatus, step: Step
) -> None:
    with pytest.raises(InvariantError, match=f"{status.name} by {step.name}"):
        advance(status, step)


def test_the_transition_table_has_exactly_the_open_statuses_as_sources() -> None:
    assert {status for status, _ in TRANSITIONS} == set(OPEN)
    assert len(TRANSITIONS) == len(OPEN) * len(Step)
    assert all(status.is_open for status in OPEN)
    assert not any(status.is_open for status in CLOSED)
