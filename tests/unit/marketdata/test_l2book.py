"""The L2 book rebuilt from DepthChanged: ordering, removal, top-N snapshots, gap refusal."""

from collections.abc import Sequence

import pytest

from crossbook.domain.events import DepthChanged
from crossbook.marketdata.views import DepthGapError, DepthSnapshot, L2Book

Levels = Sequence[tuple[int, int, int]]


def change(update_id: int, bids: Levels = (), asks: Levels = ()) -> DepthChanged:
    return DepthChanged("BTCUSDT", update_id, list(bids), list(asks))


def test_levels_are_sorted_best_first_and_zero_removes() -> None:
    """Bids descend, asks ascend; a qty of 0 removes a level, an unknown removal is a no-op."""
    book = L2Book("BTCUSDT")
    book.apply(change(1, bids=[(100, 5, 1), (102, 1, 1), (101, 2, 2)], asks=[(105, 3, 1)]))
    book.apply(change(2, bids=[(102, 0, 0), (99, 0, 0)], asks=[(104, 7, 3)]))
    assert book.bids() == [(101, 2, 2), (100, 5, 1)]
    assert book.asks() == [(104, 7, 3), (105, 3, 1)]
    assert book.best_bid() == (101, 2)
    assert book.best_ask() == (104, 7)
    assert book.update_id == 2


def test_snapshot_top_n_carries_last_update_id() -> None:
    """A snapshot is the top `limit` levels per side with the book counter."""
    book = L2Book("BTCUSDT")
    book.apply(change(1, bids=[(p, 1, 1) for p in range(90, 100)], asks=[(110, 1, 1)]))
    assert DepthSnapshot("BTCUSDT", 1, [(99, 1, 1), (98, 1, 1)], [(110, 1, 1)]) == book.snapshot(2)
    assert len(book.snapshot().bids) == 10


def test_empty_book_has_no_best() -> None:
    """An empty side has no best level."""
    book = L2Book("BTCUSDT")
    assert book.best_bid() is None
    assert book.best_ask() is None


@pytest.mark.parametrize("update_id", [0, 1, 3])
def test_an_update_id_other_than_the_next_is_refused(update_id: int) -> None:
    """Only `update_id == last + 1` applies; anything else is a bug upstream."""
    book = L2Book("BTCUSDT")
    book.apply(change(1, bids=[(100, 1, 1)]))
    with pytest.raises(DepthGapError, match="BTCUSDT"):
        book.apply(change(update_id))
    assert book.update_id == 1


def test_restore_starts_from_a_snapshot() -> None:
    """A restored book continues at the snapshot's id and ignores empty levels."""
    book = L2Book.restore("BTCUSDT", 41, [(100, 2, 1), (98, 0, 0)], [(101, 3, 2)])
    book.apply(change(42, asks=[(101, 0, 0)]))
    assert (book.bids(), book.asks()) == ([(100, 2, 1)], [])
