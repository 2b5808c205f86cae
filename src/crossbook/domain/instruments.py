"""Assets and instruments, with the integer steps every price and size is counted in.

An instrument's price is counted in ticks and its size in lots. Their products must land on
whole asset units, which `Instrument.create` checks once so that the engine only multiplies:

- base units of a size      = lots * `lot_units`
- quote units of a notional = ticks * lots * `notional_units`

A configuration whose steps do not divide the asset precisions is refused with `ValueError`
(an operator error at setup, not a trading rejection).
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from crossbook.domain.values import Lots, Ticks, Units


class Asset(msgspec.Struct, frozen=True, array_like=True):
    code: str
    precision: int
    """Decimals of the smallest unit: 8 means one unit is 0.00000001."""


class Instrument(msgspec.Struct, frozen=True, array_like=True):
    symbol: str
    base: str
    quote: str
    tick_size: str
    lot_size: str
    base_precision: int
    quote_precision: int
    lot_units: int
    """Base units in one lot."""
    notional_units: int
    """Quote units in one tick times one lot."""
    min_qty: Lots = Lots(1)
    max_qty: Lots = Lots(10**15)
    min_price: Ticks = Ticks(1)
    max_price: Ticks = Ticks(10**15)
    min_notional: Units = Units(0)

    @classmethod
    def create(
        cls,
        symbol: str,
        base: Asset,
        quote: Asset,
        tick_size: str,
        lot_size: str,
        *,
        min_qty: str | None = None,
        max_qty: str | None = None,
        min_price: str | None = None,
        max_price: str | None = None,
        min_notional: str = "0",
    ) -> Instrument:
        tick, lot = Decimal(tick_size), Decimal(lot_size)
        if tick <= 0 or lot <= 0:
            raise ValueError(f"{symbol}: tick and lot sizes must be positive")
        lot_units = lot.scaleb(base.precision)
        notional_units = (tick * lot).scaleb(quote.precision)
        if lot_units != lot_units.to_integral_value():
            raise ValueError(f"{symbol}: lot size {lot_size} is finer than {base.code} precision")
        if notional_units != notional_units.to_integral_value():
            raise ValueError(
                f"{symbol}: tick {tick_size} x lot {lot_size} is finer than {quote.code} precision"
            )

        def steps(value: str | None, step: Decimal, default: int) -> int:
            if value is None:
                return default
            count = Decimal(value) / step
            if count != count.to_integral_value() or count < 0:
                raise ValueError(f"{symbol}: {value} is not a multiple of {step}")
            return int(count)

        notional = Decimal(min_notional).scaleb(quote.precision)
        if notional != notional.to_integral_value():
            raise ValueError(f"{symbol}: min notional {min_notional} is finer than quote precision")
        return cls(
            symbol=symbol,
            base=base.code,
            quote=quote.code,
            tick_size=tick_size,
            lot_size=lot_size,
            base_precision=base.precision,
            quote_precision=quote.precision,
            lot_units=int(lot_units),
            notional_units=int(notional_units),
            min_qty=Lots(steps(min_qty, lot, 1)),
            max_qty=Lots(steps(max_qty, lot, 10**15)),
            min_price=Ticks(steps(min_price, tick, 1)),
            max_price=Ticks(steps(max_price, tick, 10**15)),
            min_notional=Units(int(notional)),
        )

    def notional(self, price: int, qty: int) -> int:
        """Quote units of `qty` lots at `price` ticks."""
        return price * qty * self.notional_units
