"""`BookSync`: snapshot plus diffs in Decimal, gaps counted and flagged, server resyncs and
REST snapshots (fresh and stale)."""

from __future__ import annotations

from decimal import Decimal

from crossbook.client.book import BookSync
from crossbook.protocol import native, ws
from crossbook.protocol.localbook import DiffResult, SnapshotResult


def snapshot(last: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]],
             resync: bool = False) -> ws.DepthMessage:
    return ws.DepthMessage("depth", "X", "snapshot", last, bids, asks, resync=resync)


def update(first: int, last: int, bids: list[tuple[str, str]] = (),  # type: ignore[assignment]
           asks: list[tuple[str, str]] = ()) -> ws.DepthMessage:  # type: ignore[assignment]
    return ws.DepthMessage("depth", "X", "update", last, list(bids), list(asks),
                           first_update_id=first)


def test_snapshot_then_chained_updates() -> None:
    book = BookSync("X")
    assert book.needs_snapshot
    assert book.on_message(snapshot(5, [("10.0", "1")], [("11.0", "2")])) is \
        SnapshotResult.SYNCED
    assert book.on_message(update(6, 7, [("10.0", "0"), ("9.5", "3")])) is DiffResult.APPLIED
    assert book.bids() == [(Decimal("9.5"), Decimal("3"))]
    assert book.asks() == [(Decimal("11.0"), Decimal("2"))]
    assert (book.last_update_id, book.gaps, book.needs_snapshot) == (7, 0, False)


def test_gap_discards_the_book_until_a_newer_rest_snapshot() -> None:
    book = BookSync("X")
    book.on_message(snapshot(5, [("10", "1")], []))
    assert book.on_message(update(8, 9, [("10", "4")])) is DiffResult.GAP
    assert (book.synced, book.gaps, book.needs_snapshot) == (False, 1, True)
    assert book.on_message(update(10, 10, [("10", "5")])) is DiffResult.BUFFERED
    stale = native.Depth("X", 6, [("10", "2")], [])
    assert book.apply_snapshot(stale) is SnapshotResult.STALE
    fresh = native.Depth("X", 9, [("10", "4")], [("12", "1")])
    assert book.apply_snapshot(fresh) is SnapshotResult.SYNCED
    assert book.bids() == [(Decimal("10"), Decimal("5"))]
    assert book.last_update_id == 10


def test_server_resync_snapshot_replaces_the_book() -> None:
    book = BookSync("X")
    book.on_message(snapshot(5, [("10", "1")], []))
    book.on_message(snapshot(50, [("20", "1")], [], resync=True))
    assert book.bids() == [(Decimal("20"), Decimal("1"))]
    assert book.on_message(update(51, 51, asks=[("21", "1")])) is DiffResult.APPLIED
    book.on_reconnected()
    assert not book.synced
    assert book.needs_snapshot
