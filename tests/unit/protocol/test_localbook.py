"""The client-side depth sync procedure: buffer, snapshot, drop, chain, gap."""

from decimal import Decimal

from crossbook.protocol.localbook import DiffResult, LocalBook, SnapshotResult


def test_buffered_diffs_replay_over_the_snapshot() -> None:
    """Diffs before the snapshot are buffered; older ones are dropped, the rest applied."""
    book: LocalBook[int, int] = LocalBook()
    assert book.on_diff(5, 6, [(100, 1)], []) is DiffResult.BUFFERED
    assert book.on_diff(7, 9, [(100, 0), (99, 2)], [(101, 4)]) is DiffResult.BUFFERED
    assert book.apply_snapshot(7, [(100, 3), (98, 1)], [(102, 1)]) is SnapshotResult.SYNCED
    assert book.synced
    assert book.last_update_id == 9
    assert book.bids() == [(99, 2), (98, 1)]
    assert book.asks() == [(101, 4), (102, 1)]
    assert book.on_diff(10, 10, [], [(101, 0)]) is DiffResult.APPLIED
    assert book.asks(1) == [(102, 1)]


def test_snapshot_older_than_the_buffer_is_stale() -> None:
    """If the first buffered diff starts after lastUpdateId + 1, fetch a newer snapshot."""
    book: LocalBook[int, int] = LocalBook()
    book.on_diff(10, 12, [(1, 1)], [])
    assert book.apply_snapshot(8, [], []) is SnapshotResult.STALE
    assert not book.synced
    assert book.apply_snapshot(9, [], []) is SnapshotResult.SYNCED
    assert book.bids() == [(1, 1)]


def test_first_diff_after_a_snapshot_may_overlap_it() -> None:
    """With no buffer, the first diff needs U <= lastUpdateId + 1 <= u, later ones U == u + 1."""
    book: LocalBook[int, int] = LocalBook()
    book.apply_snapshot(20, [(5, 5)], [])
    assert book.on_diff(15, 20, [(5, 0)], []) is DiffResult.DROPPED
    assert book.on_diff(18, 22, [(6, 1)], []) is DiffResult.APPLIED
    assert book.on_diff(22, 23, [(6, 2)], []) is DiffResult.GAP
    assert not book.synced
    assert book.bids() == []


def test_a_gap_discards_the_book_and_restarts_from_a_snapshot() -> None:
    """The diff after a hole starts a new buffer; a fresh snapshot resyncs."""
    book: LocalBook[int, int] = LocalBook()
    book.apply_snapshot(1, [(10, 1)], [])
    assert book.on_diff(2, 2, [(10, 2)], []) is DiffResult.APPLIED
    assert book.on_diff(4, 4, [(11, 1)], []) is DiffResult.GAP
    assert book.last_update_id == -1
    assert book.on_diff(5, 5, [(12, 1)], []) is DiffResult.BUFFERED
    assert book.apply_snapshot(3, [(10, 2), (9, 9)], []) is SnapshotResult.SYNCED
    assert book.bids() == [(12, 1), (11, 1), (10, 2), (9, 9)]


def test_a_hole_inside_the_buffer_reports_a_gap_and_keeps_the_rest() -> None:
    """Replaying the buffer stops at a hole; the diffs from there wait for a new snapshot."""
    book: LocalBook[int, int] = LocalBook()
    for first in (2, 3, 5, 6):
        book.on_diff(first, first, [(first, 1)], [])
    assert book.apply_snapshot(1, [], []) is SnapshotResult.GAP
    assert not book.synced
    assert book.apply_snapshot(4, [(4, 1)], []) is SnapshotResult.SYNCED
    assert book.bids() == [(6, 1), (5, 1), (4, 1)]


def test_buffer_keeps_the_newest_diffs() -> None:
    """A full buffer drops its oldest diffs; the snapshot check then asks for a newer one."""
    book: LocalBook[int, int] = LocalBook(max_buffer=2)
    for first in (1, 2, 3):
        book.on_diff(first, first, [(first, 1)], [])
    assert book.apply_snapshot(0, [], []) is SnapshotResult.STALE
    assert book.apply_snapshot(1, [], []) is SnapshotResult.SYNCED
    assert book.bids() == [(3, 1), (2, 1)]


def test_decimal_prices_and_quantities() -> None:
    """Clients reading Binance JSON can keep Decimals; "0.00" removes a level."""
    book: LocalBook[Decimal, Decimal] = LocalBook()
    book.apply_snapshot(1, [(Decimal("10.5"), Decimal("1.0"))], [(Decimal("11"), Decimal("0"))])
    book.on_diff(2, 2, [(Decimal("10.5"), Decimal("0.00")), (Decimal("10.4"), Decimal("2"))], [])
    assert book.bids() == [(Decimal("10.4"), Decimal("2"))]
    assert book.asks() == []
