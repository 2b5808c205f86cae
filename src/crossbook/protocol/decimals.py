"""Decimal strings at the edge, integers inside: exact conversion with an instrument's steps.

Contract:

- `DecimalScale(step, code)` converts between a decimal string and a whole number of `step`
  (a positive decimal string such as a tick size "0.01", a lot size "0.001", or an asset's
  smallest unit "0.00000001"). `parse` returns an `int`, or a `DecimalError` carrying `code`
  when the text is not exactly a positive multiple of the step. It never rounds, never
  raises on bad input, and never builds a `Decimal`: the text is split at the point and read
  with `int`, which is exact.
- Accepted text is plain ASCII `digits[.digits]` (the grammar exchanges use for price and
  quantity parameters): at most 20 digits before and 20 after the point, no sign, no
  exponent, no spaces, no underscores, no `NaN` or `Infinity`. Extra trailing zeros after the
  step's decimals are accepted ("1.2300" on a 0.01 grid is 123 ticks).
- `format` gives the canonical string: exactly the step's number of decimals ("1.50" on a
  "0.01" grid, "7" on a "1" grid). `parse(format(n)) == n` for every positive `n`.
- Zero is refused unless `parse(text, allow_zero=True)`. Results above 2**63 - 1 are refused,
  so every accepted value fits the binary protocol's 64-bit fields.
- Each scale remembers up to `MEMO_SIZE` recent accepted texts and formatted counts (order
  flow repeats a few prices and sizes): a repeat costs one dict lookup. The memo only
  returns what the conversion gave before, so results never depend on it.

`InstrumentScales.of(instrument)` bundles the scales of one instrument: `price` (ticks,
`INVALID_PRICE`), `quantity` (lots, `INVALID_QUANTITY`), `base` and `quote` amounts (asset
units, `INVALID_AMOUNT`). A gateway keeps one per symbol; the module-level helpers
(`price_to_ticks`, `quantity_to_lots`, `amount_to_units` and their inverses) look the scales
up in a small memo keyed by the step string.

Pure: no I/O, clock, logging or randomness.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from crossbook.domain.instruments import Instrument
from crossbook.domain.rejects import Reject
from crossbook.domain.values import Lots, Ticks, Units

MAX_INTEGER_DIGITS = 20
MAX_FRACTION_DIGITS = 20
MAX_VALUE = 2**63 - 1
_MAX_TEXT = MAX_INTEGER_DIGITS + 1 + MAX_FRACTION_DIGITS
MEMO_SIZE = 4096


@dataclass(frozen=True, slots=True)
class DecimalError:
    """Why a decimal string was refused: a `Reject` code and a message for the client."""

    code: Reject
    message: str


class DecimalScale:
    """Exact conversion between decimal strings and whole multiples of one positive step."""

    __slots__ = ("_formatted", "_parsed", "code", "decimals", "step", "step_text", "unit")

    def __init__(self, step: str, code: Reject) -> None:
        try:
            value = Decimal(step)
        except InvalidOperation:
            raise ValueError(f"step {step!r} is not a decimal") from None
        if not value.is_finite() or value <= 0:
            raise ValueError(f"step {step!r} must be a positive finite decimal")
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)  # finite, checked above
        self.decimals = max(0, -exponent)
        """Decimals of the canonical string: those of the step as written ("0.50" has 2)."""
        self.unit = int(value.scaleb(self.decimals))
        """The step counted in units of 10**-decimals ("0.05" -> 5)."""
        self.step = value
        self.step_text = step
        self.code = code
        self._parsed: dict[str, int] = {}
        self._formatted: dict[int, str] = {}

    def __repr__(self) -> str:
        return f"DecimalScale({self.step_text!r}, {self.code.name})"

    def parse(self, text: str, *, allow_zero: bool = False) -> int | DecimalError:
        """`text` as a whole number of steps, or a `DecimalError` with this scale's code."""
        count = self._parsed.get(text) if type(text) is str else None
        if count is not None and (count or allow_zero):
            return count
        result = self._parse(text, allow_zero)
        if type(result) is int:
            if len(self._parsed) >= MEMO_SIZE:
                self._parsed.clear()
            self._parsed[text] = result
        return result

    def _parse(self, text: str, allow_zero: bool) -> int | DecimalError:
        if type(text) is not str:
            return DecimalError(self.code, "must be a decimal string")
        if len(text) > _MAX_TEXT or not text.isascii():
            return self._refuse(text, "is not a plain decimal number")
        whole, dot, fraction = text.partition(".")
        if not whole.isdigit() or len(whole) > MAX_INTEGER_DIGITS:
            return self._refuse(text, "is not a plain decimal number")
        decimals = self.decimals
        if dot:
            if not fraction.isdigit() or len(fraction) > MAX_FRACTION_DIGITS:
                return self._refuse(text, "is not a plain decimal number")
            if len(fraction) > decimals:
                if fraction[decimals:].strip("0"):
                    return self._refuse(text, f"is not a multiple of {self.step_text}")
                fraction = fraction[:decimals]
            scaled = int(whole + fraction + "0" * (decimals - len(fraction)))
        elif decimals:
            scaled = int(whole + "0" * decimals)
        else:
            scaled = int(whole)
        unit = self.unit
        if unit == 1:
            count = scaled
        else:
            count, remainder = divmod(scaled, unit)
            if remainder:
                return self._refuse(text, f"is not a multiple of {self.step_text}")
        if count > MAX_VALUE:
            return self._refuse(text, "is too large")
        if not count and not allow_zero:
            return self._refuse(text, "must be positive")
        return count

    def format(self, count: int) -> str:
        """The canonical string of `count` steps: exactly `decimals` digits after the point."""
        text = self._formatted.get(count)
        if text is None:
            if len(self._formatted) >= MEMO_SIZE:
                self._formatted.clear()
            text = self._formatted[count] = self._format(count)
        return text

    def _format(self, count: int) -> str:
        scaled = count * self.unit
        decimals = self.decimals
        if not decimals:
            return str(scaled)
        sign = ""
        if scaled < 0:
            sign, scaled = "-", -scaled
        digits = str(scaled).rjust(decimals + 1, "0")
        return f"{sign}{digits[:-decimals]}.{digits[-decimals:]}"

    def _refuse(self, text: str, reason: str) -> DecimalError:
        shown = text if len(text) <= 48 else text[:45] + "..."
        return DecimalError(self.code, f"{shown!r} {reason}")


@lru_cache(maxsize=1024)
def scale_for_step(step: str, code: Reject) -> DecimalScale:
    """The memoised scale of one step string (instruments share a handful of steps)."""
    return DecimalScale(step, code)


@lru_cache(maxsize=64)
def scale_for_precision(precision: int) -> DecimalScale:
    """The scale of an asset's smallest unit: precision 8 means steps of 0.00000001."""
    if precision < 0:
        raise ValueError(f"precision {precision} must not be negative")
    step = "1" if precision == 0 else "0." + "0" * (precision - 1) + "1"
    return DecimalScale(step, Reject.INVALID_AMOUNT)


@dataclass(frozen=True, slots=True)
class InstrumentScales:
    """The four scales of one instrument; build once per symbol and keep it."""

    price: DecimalScale
    quantity: DecimalScale
    base: DecimalScale
    quote: DecimalScale

    @classmethod
    def of(cls, instrument: Instrument) -> InstrumentScales:
        return cls(
            price=scale_for_step(instrument.tick_size, Reject.INVALID_PRICE),
            quantity=scale_for_step(instrument.lot_size, Reject.INVALID_QUANTITY),
            base=scale_for_precision(instrument.base_precision),
            quote=scale_for_precision(instrument.quote_precision),
        )


def price_to_ticks(text: str, instrument: Instrument) -> Ticks | DecimalError:
    """A price string as ticks of `instrument`, or `INVALID_PRICE`."""
    result = scale_for_step(instrument.tick_size, Reject.INVALID_PRICE).parse(text)
    return result if isinstance(result, DecimalError) else Ticks(result)


def quantity_to_lots(text: str, instrument: Instrument) -> Lots | DecimalError:
    """A base quantity string as lots of `instrument`, or `INVALID_QUANTITY`."""
    result = scale_for_step(instrument.lot_size, Reject.INVALID_QUANTITY).parse(text)
    return result if isinstance(result, DecimalError) else Lots(result)


def amount_to_units(text: str, precision: int, *, allow_zero: bool = False) -> Units | DecimalError:
    """An asset amount string as units at `precision` decimals, or `INVALID_AMOUNT`."""
    result = scale_for_precision(precision).parse(text, allow_zero=allow_zero)
    return result if isinstance(result, DecimalError) else Units(result)


def ticks_to_price(ticks: int, instrument: Instrument) -> str:
    """The canonical price string of `ticks` (the tick size's decimals)."""
    return scale_for_step(instrument.tick_size, Reject.INVALID_PRICE).format(ticks)


def lots_to_quantity(lots: int, instrument: Instrument) -> str:
    """The canonical quantity string of `lots` (the lot size's decimals)."""
    return scale_for_step(instrument.lot_size, Reject.INVALID_QUANTITY).format(lots)


def units_to_amount(units: int, precision: int) -> str:
    """The canonical amount string of `units` (exactly `precision` decimals; may be negative)."""
    return scale_for_precision(precision).format(units)
