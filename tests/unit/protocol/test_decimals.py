"""Decimal string <-> integer steps: exact round trips, coded refusals, and agreement with a
slow `Decimal` reference on arbitrary text."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossbook.domain.instruments import Asset, Instrument
from crossbook.domain.rejects import Reject
from crossbook.protocol.decimals import (
    MAX_VALUE,
    DecimalError,
    DecimalScale,
    InstrumentScales,
    amount_to_units,
    lots_to_quantity,
    price_to_ticks,
    quantity_to_lots,
    scale_for_precision,
    ticks_to_price,
    units_to_amount,
)

STEPS = ["1", "5", "10", "0.1", "0.5", "0.01", "0.05", "0.25", "0.50", "0.001", "0.00000001"]
BTC = Asset("BTC", 8)
USDT = Asset("USDT", 8)
BTCUSDT = Instrument.create("BTCUSDT", BTC, USDT, "0.01", "0.00001")


def reference_parse(text: str, step: str) -> int | None:
    """Obviously correct and slow: the same grammar, checked with `Decimal`."""
    if not text.isascii() or text.strip() != text or not text:
        return None
    whole, _, fraction = text.partition(".")
    if not whole.isdigit() or ("." in text and not fraction.isdigit()):
        return None
    if len(whole) > 20 or len(fraction) > 20:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the grammar above admits only decimals
        return None
    count = value / Decimal(step)
    if count != count.to_integral_value() or count <= 0 or count > MAX_VALUE:
        return None
    return int(count)


@pytest.mark.parametrize("step", STEPS)
@given(count=st.integers(min_value=1, max_value=MAX_VALUE))
def test_format_then_parse_round_trips(step: str, count: int) -> None:
    scale = DecimalScale(step, Reject.INVALID_PRICE)
    text = scale.format(count)
    assert scale.parse(text) == count
    assert Decimal(text) == count * Decimal(step)


@pytest.mark.parametrize("step", STEPS)
@given(count=st.integers(min_value=1, max_value=10**15), zeros=st.integers(0, 5))
def test_trailing_zeros_are_exact(step: str, count: int, zeros: int) -> None:
    scale = DecimalScale(step, Reject.INVALID_QUANTITY)
    text = scale.format(count)
    padded = text + "0" * zeros if "." in text else text + ("." + "0" * zeros if zeros else "")
    assert scale.parse(padded) == count


ALPHABET = st.sampled_from([*"0123456789.", "-", "+", "e", "E", " ", "_", "n", "²", "٣"])


@pytest.mark.parametrize("step", STEPS)
@given(text=st.text(ALPHABET, max_size=30))
def test_fast_path_agrees_with_decimal_reference(step: str, text: str) -> None:
    result = DecimalScale(step, Reject.INVALID_PRICE).parse(text)
    expected = reference_parse(text, step)
    if expected is None:
        assert isinstance(result, DecimalError)
        assert result.code is Reject.INVALID_PRICE
    else:
        assert result == expected


@given(text=st.text(max_size=60))
def test_any_text_gives_int_or_coded_error(text: str) -> None:
    result = DecimalScale("0.01", Reject.INVALID_QUANTITY).parse(text)
    assert isinstance(result, int | DecimalError)
    if isinstance(result, DecimalError):
        assert result.code is Reject.INVALID_QUANTITY


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-1",
        "+1",
        "1e2",
        "1E-2",
        "NaN",
        "nan",
        "Infinity",
        "inf",
        "-0",
        " 1",
        "1 ",
        "1_0",
        ".5",
        "5.",
        "1.2.3",
        "0x10",
        "\uff11",
        "٣",
        "²",
        "0.001",
        "0",
        "0.00",
        "1" * 21,
        "1." + "0" * 21,
        "9" * 20,
        "1e999999999",
    ],
)
def test_refusals_are_coded(text: str) -> None:
    result = DecimalScale("0.01", Reject.INVALID_PRICE).parse(text)
    assert isinstance(result, DecimalError), text
    assert result.code is Reject.INVALID_PRICE
    assert result.message


def test_non_string_is_refused() -> None:
    scale = DecimalScale("0.01", Reject.INVALID_PRICE)
    for value in (1, 1.5, None, b"1", Decimal("1")):
        assert isinstance(scale.parse(value), DecimalError)  # type: ignore[arg-type]


def test_long_input_message_is_shortened() -> None:
    result = DecimalScale("1", Reject.INVALID_AMOUNT).parse("x" * 10_000)
    assert isinstance(result, DecimalError)
    assert len(result.message) < 100


def test_zero_only_when_allowed() -> None:
    scale = DecimalScale("0.01", Reject.INVALID_AMOUNT)
    assert isinstance(scale.parse("0.00"), DecimalError)
    assert scale.parse("0.00", allow_zero=True) == 0
    assert scale.format(0) == "0.00"


@pytest.mark.parametrize(
    ("step", "count", "text"),
    [
        ("0.01", 1, "0.01"),
        ("0.01", 12345, "123.45"),
        ("0.50", 3, "1.50"),
        ("0.5", 3, "1.5"),
        ("5", 3, "15"),
        ("1", 7, "7"),
        ("0.00000001", 1, "0.00000001"),
        ("0.01", -150, "-1.50"),
        ("10", 2, "20"),
    ],
)
def test_canonical_format(step: str, count: int, text: str) -> None:
    assert DecimalScale(step, Reject.INVALID_PRICE).format(count) == text


def test_off_grid_is_not_rounded() -> None:
    scale = DecimalScale("0.05", Reject.INVALID_PRICE)
    assert scale.parse("1.05") == 21
    error = scale.parse("1.06")
    assert isinstance(error, DecimalError)
    assert "multiple" in error.message


@pytest.mark.parametrize("step", ["0", "-1", "abc", "NaN", "Infinity"])
def test_bad_steps_are_setup_errors(step: str) -> None:
    with pytest.raises(ValueError, match="step"):
        DecimalScale(step, Reject.INVALID_PRICE)


def test_instrument_helpers() -> None:
    assert price_to_ticks("65000.10", BTCUSDT) == 6_500_010
    assert quantity_to_lots("0.015", BTCUSDT) == 1500
    assert ticks_to_price(6_500_010, BTCUSDT) == "65000.10"
    assert lots_to_quantity(1500, BTCUSDT) == "0.01500"
    error = price_to_ticks("65000.001", BTCUSDT)
    assert isinstance(error, DecimalError)
    assert error.code is Reject.INVALID_PRICE
    error = quantity_to_lots("0.000001", BTCUSDT)
    assert isinstance(error, DecimalError)
    assert error.code is Reject.INVALID_QUANTITY
    scales = InstrumentScales.of(BTCUSDT)
    assert scales.base.parse("1") == 10**8
    assert scales.quote.format(1) == "0.00000001"


def test_amount_helpers() -> None:
    assert amount_to_units("1.5", 8) == 150_000_000
    assert amount_to_units("0", 8, allow_zero=True) == 0
    assert units_to_amount(150_000_000, 8) == "1.50000000"
    assert units_to_amount(5, 0) == "5"
    error = amount_to_units("0.000000001", 8)
    assert isinstance(error, DecimalError)
    assert error.code is Reject.INVALID_AMOUNT
    with pytest.raises(ValueError, match="precision"):
        scale_for_precision(-1)
    assert repr(scale_for_precision(2)) == "DecimalScale('0.01', INVALID_AMOUNT)"


@given(st.integers(min_value=0, max_value=18), st.integers(min_value=0, max_value=MAX_VALUE))
def test_amount_round_trip(precision: int, units: int) -> None:
    assert amount_to_units(units_to_amount(units, precision), precision, allow_zero=True) == units
