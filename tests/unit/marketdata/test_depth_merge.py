"""Merging consecutive depth diffs for 100 ms batching."""

from collections.abc import Sequence

import pytest

from crossbook.marketdata.views import DepthDiff, merge_depth_diffs

Levels = Sequence[tuple[int, int, int]]


def diff(
    first: int, last: int, bids: Levels = (), asks: Levels = (), symbol: str = "BTCUSDT"
) -> DepthDiff:
    return DepthDiff(symbol, first, last, last * 10, list(bids), list(asks))


def test_merge_keeps_first_u_last_u_and_newest_totals() -> None:
    """U of the first, u of the last, the last total per price, sides sorted best first."""
    merged = merge_depth_diffs(
        [
            diff(5, 6, bids=[(100, 1, 1), (99, 4, 1)], asks=[(105, 2, 1)]),
            diff(7, 7, bids=[(100, 0, 0), (101, 3, 2)]),
            diff(8, 10, asks=[(104, 1, 1), (105, 5, 2)]),
        ]
    )
    assert (
        DepthDiff(
            "BTCUSDT",
            5,
            10,
            100,
            [(101, 3, 2), (100, 0, 0), (99, 4, 1)],
            [(104, 1, 1), (105, 5, 2)],
        )
        == merged
    )


def test_merging_one_diff_returns_it() -> None:
    """A single diff is its own merge."""
    only = diff(3, 4, bids=[(1, 1, 1)])
    assert only is merge_depth_diffs([only])


@pytest.mark.parametrize(
    ("diffs", "message"),
    [
        ([], "nothing"),
        ([diff(1, 2), diff(4, 4)], "does not follow 2"),
        ([diff(1, 2), diff(2, 3)], "does not follow 2"),
        ([diff(1, 2), diff(3, 3, symbol="ETHUSDT")], "ETHUSDT"),
    ],
)
def test_merge_refuses_what_would_hide_a_gap(diffs: list[DepthDiff], message: str) -> None:
    """Empty input, non-chaining ids and mixed symbols are programming errors."""
    with pytest.raises(ValueError, match=message):
        merge_depth_diffs(diffs)
