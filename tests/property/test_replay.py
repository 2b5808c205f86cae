"""Determinism: the same stamped commands give the same events and state, from the start or
from a snapshot taken anywhere in the stream."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from crossbook.domain import commands as cmd
from crossbook.domain import events as ev
from crossbook.engine.exchange import Exchange
from tests.support.strategies import command_streams

Stream = list[tuple[int, int, cmd.Command]]


def _run(engine: Exchange, stream: Stream) -> list[list[ev.Event]]:
    return [engine.apply(seq, ts, command) for seq, ts, command in stream]


@given(command_streams())
def test_replaying_a_stream_gives_the_same_events_and_state_hash(stream: Stream) -> None:
    first, second = Exchange(), Exchange()
    assert _run(first, stream) == _run(second, stream)
    assert first.state_hash() == second.state_hash()
    assert first.snapshot() == second.snapshot()


@given(command_streams(), st.data())
def test_snapshot_restore_and_replay_of_the_tail_reaches_the_same_state(
    stream: Stream, data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(stream)), label="cut")
    full = Exchange()
    head_events = _run(full, stream[:cut])
    snapshot, hash_at_cut = full.snapshot(), full.state_hash()
    tail_events = _run(full, stream[cut:])

    restored = Exchange.restore(snapshot)
    assert restored.state_hash() == hash_at_cut
    assert restored.last_seq == (stream[cut - 1][0] if cut else 0)
    restored.check_invariants()
    assert _run(restored, stream[cut:]) == tail_events
    assert restored.state_hash() == full.state_hash()
    assert restored.snapshot() == full.snapshot()
    assert len(head_events) == cut


@given(command_streams(), st.data())
def test_replay_without_events_reaches_the_state_apply_does(
    stream: Stream, data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(stream)), label="cut")
    live, replayed = Exchange(), Exchange()
    _run(live, stream[:cut])
    for seq, ts, command in stream[:cut]:
        replayed.replay(seq, ts, command)
    assert replayed.last_seq == live.last_seq
    assert replayed.state_hash() == live.state_hash()
    assert replayed.snapshot() == live.snapshot()
    assert {s: b.update_id for s, b in replayed.books.items()} == {
        s: b.update_id for s, b in live.books.items()
    }
    # the first live command after recovery reports exactly what it would have
    assert _run(replayed, stream[cut:]) == _run(live, stream[cut:])
