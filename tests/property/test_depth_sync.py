"""Depth sync end to end: MarketData diffs + snapshot rebuild the book in a LocalBook.

Random batches of commands change one symbol's book; the publisher merges consecutive diffs
at random points (100 ms batching). A client subscribes at a random batch, gets a snapshot
taken at a random later point, applies it at a random moment, and may lose one diff after
syncing. The client must end with MarketData's book, level by level, having reported a gap
exactly when a diff it needed was lost, and resynced from a fresh snapshot.
"""

from __future__ import annotations

from itertools import pairwise

from hypothesis import event, given
from hypothesis import strategies as st

from crossbook.domain.commands import HaltTrading
from crossbook.domain.events import DepthChanged, Event
from crossbook.marketdata.views import DepthDiff, DepthSnapshot, MarketData, merge_depth_diffs
from crossbook.protocol.localbook import DiffResult, LocalBook, SnapshotResult
from crossbook.sequencer.ports import Applied

SYMBOL = "BTCUSDT"
Change = tuple[bool, int, int, int]  # (is_bid, price, qty, order_count)

changes = st.lists(
    st.tuples(st.booleans(), st.integers(1, 12), st.integers(0, 4), st.integers(1, 3)),
    max_size=5,
)
batches = st.lists(st.lists(changes, min_size=1, max_size=4), min_size=1, max_size=25)


def level(change: Change) -> tuple[int, int, int]:
    _, price, qty, count = change
    return price, qty, count if qty else 0


def snapshot_of(md: MarketData) -> DepthSnapshot:
    if SYMBOL not in md.symbols():
        return DepthSnapshot(SYMBOL, 0, [], [])
    return md.depth(SYMBOL, None)


def publish(
    batches: list[list[list[Change]]], flushes: list[bool]
) -> tuple[MarketData, list[tuple[int, DepthDiff]], list[DepthSnapshot], dict[int, int]]:
    """Fold the batches; return the book, (batch index, diff) as delivered, the snapshot
    after each batch, and the reference book (price keyed, bids negative)."""
    md = MarketData()
    reference: dict[int, int] = {}
    delivered: list[tuple[int, DepthDiff]] = []
    snapshots: list[DepthSnapshot] = []
    pending: list[DepthDiff] = []
    seq = update_id = 0
    for index, batch in enumerate(batches):
        stamped = []
        for command in batch:
            seq += 1
            events: list[Event] = []
            if command:
                update_id += 1
                bids = [level(c) for c in command if c[0]]
                asks = [level(c) for c in command if not c[0]]
                events.append(DepthChanged(SYMBOL, update_id, bids, asks))
                for is_bid, price, qty, _ in command:
                    key = -price if is_bid else price
                    if qty:
                        reference[key] = qty
                    else:
                        reference.pop(key, None)
            stamped.append(Applied(seq, seq * 1000, HaltTrading(SYMBOL), events))
        pending.extend(md.apply(stamped).depth)
        if pending and (flushes[index % len(flushes)] or index == len(batches) - 1):
            delivered.append((index, merge_depth_diffs(pending)))
            pending = []
        snapshots.append(snapshot_of(md))
    return md, delivered, snapshots, reference


def pairs(levels: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
    return [(price, qty) for price, qty, _ in levels]


@given(
    batches=batches,
    flushes=st.lists(st.booleans(), min_size=1, max_size=8),
    data=st.data(),
)
def test_local_book_rebuilds_the_market_data_book(
    batches: list[list[list[Change]]], flushes: list[bool], data: st.DataObject
) -> None:
    md, delivered, snapshots, reference = publish(batches, flushes)
    final = snapshot_of(md)
    assert reference == {-p: q for p, q, _ in final.bids} | {p: q for p, q, _ in final.asks}
    for (_, older), (_, newer) in pairwise(delivered):
        assert newer.first_update_id == older.last_update_id + 1

    last = len(batches) - 1
    subscribe = data.draw(st.integers(0, last), label="subscribe at batch")
    taken = data.draw(st.integers(subscribe - 1, last), label="snapshot after batch")
    arrives = data.draw(st.integers(subscribe - 1, last), label="snapshot applied after batch")
    drop = data.draw(st.integers(0, len(delivered)), label="lose the n-th diff after sync")

    def snapshot(after: int) -> DepthSnapshot:
        return snapshots[after] if after >= 0 else DepthSnapshot(SYMBOL, 0, [], [])

    book: LocalBook[int, int] = LocalBook()
    applied_snapshot = False
    gaps = after_sync = 0
    expect_gap = False
    for index, diff in delivered:
        if index < subscribe:
            continue
        if not applied_snapshot and index > arrives:
            shot = snapshot(taken)
            synced = book.apply_snapshot(shot.last_update_id, pairs(shot.bids), pairs(shot.asks))
            assert synced is SnapshotResult.SYNCED
            applied_snapshot = True
        if applied_snapshot and book.synced and diff.last_update_id > book.last_update_id:
            after_sync += 1
            if after_sync == drop:
                expect_gap = True
                continue
        result = book.on_diff(
            diff.first_update_id, diff.last_update_id, pairs(diff.bids), pairs(diff.asks)
        )
        if result is DiffResult.GAP:
            assert expect_gap
            expect_gap = False
            gaps += 1
            shot = snapshot(index)
            resync = book.apply_snapshot(shot.last_update_id, pairs(shot.bids), pairs(shot.asks))
            assert resync is SnapshotResult.SYNCED
    if not applied_snapshot:
        shot = snapshot(taken)
        assert (
            book.apply_snapshot(shot.last_update_id, pairs(shot.bids), pairs(shot.asks))
            is SnapshotResult.SYNCED
        )

    assert gaps <= 1
    event(f"gaps={gaps}, lost the last diff={expect_gap}")
    if expect_gap:
        # The lost diff was the last one: nothing came after it to reveal the hole.
        assert gaps == 0
        return
    assert book.synced
    assert book.last_update_id == final.last_update_id
    assert book.bids() == pairs(final.bids)
    assert book.asks() == pairs(final.asks)
