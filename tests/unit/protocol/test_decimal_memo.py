"""`DecimalScale`'s memo of recent conversions never changes an answer: repeats, zero with
and without `allow_zero`, refusals (never remembered), and a full memo starting over."""

from __future__ import annotations

from crossbook.domain.rejects import Reject
from crossbook.protocol import decimals
from crossbook.protocol.decimals import DecimalError, DecimalScale


def test_repeats_give_the_first_answer() -> None:
    scale = DecimalScale("0.01", Reject.INVALID_PRICE)
    assert scale.parse("1.50") == scale.parse("1.50") == scale.parse("1.5") == 150
    assert scale.format(150) == scale.format(150) == "1.50"
    assert isinstance(scale.parse("1.505"), DecimalError)
    assert isinstance(scale.parse("1.505"), DecimalError)  # refusals are not remembered


def test_zero_is_remembered_only_for_callers_that_allow_it() -> None:
    scale = DecimalScale("0.001", Reject.INVALID_AMOUNT)
    assert scale.parse("0.000", allow_zero=True) == 0
    refused = scale.parse("0.000")
    assert isinstance(refused, DecimalError)
    assert refused.code is Reject.INVALID_AMOUNT
    assert scale.parse("0.000", allow_zero=True) == 0


def test_a_full_memo_starts_over() -> None:
    scale = DecimalScale("1", Reject.INVALID_QUANTITY)
    for n in range(1, decimals.MEMO_SIZE + 10):
        assert scale.parse(str(n)) == n
        assert scale.format(n) == str(n)
    assert scale.parse("7") == 7
    assert scale.format(decimals.MEMO_SIZE + 5) == str(decimals.MEMO_SIZE + 5)
