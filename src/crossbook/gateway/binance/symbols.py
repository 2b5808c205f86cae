"""Binance symbols and number formats.

- A crossbook symbol `BTC-USDT` is `BTCUSDT` on the Binance API (the dash dropped, upper
  case). `SymbolTable.lookup` resolves a Binance name (any case) to the instrument record,
  rebuilding its index when instruments were added since; a missing symbol is -1102 and an
  unknown one -1121 `Invalid symbol.`.
- `Formats` renders integers as Binance decimal strings with at least 8 decimals, as
  Binance does (`"0.00100000"`): prices from ticks, quantities from lots, base and quote
  amounts from asset units. More decimals are shown only when a step needs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from crossbook.gateway.binance.errors import invalid_symbol, missing
from crossbook.gateway.views import GatewayViews, InstrumentRecord
from crossbook.protocol.decimals import DecimalScale, scale_for_precision

DECIMALS = 8
_NS_PER_MS = 1_000_000


def binance_symbol(symbol: str) -> str:
    return symbol.replace("-", "").upper()


def ms(ns: int) -> int:
    return ns // _NS_PER_MS


def ns_range(start: int | None, end: int | None) -> tuple[int | None, int | None]:
    """Binance's `startTime`/`endTime` (ms, both inclusive) as `[start, end)` in ns."""
    return (
        None if start is None else start * _NS_PER_MS,
        None if end is None else (end + 1) * _NS_PER_MS,
    )


def fixed(scale: DecimalScale, count: int) -> str:
    """`count` steps of `scale` with at least `DECIMALS` decimals."""
    text = scale.format(count)
    decimals = scale.decimals
    if decimals >= DECIMALS:
        return text
    return text + ("." if not decimals else "") + "0" * (DECIMALS - decimals)


def rate(bps: int) -> str:
    """Basis points as a Binance commission rate: 10 -> "0.00100000"."""
    return format(Decimal(bps).scaleb(-4), ".8f")


def amount(precision: int, units: int) -> str:
    return fixed(scale_for_precision(precision), units)


@dataclass(frozen=True, slots=True)
class Formats:
    record: InstrumentRecord
    name: str

    def price(self, ticks: int) -> str:
        return fixed(self.record.scales.price, ticks)

    def qty(self, lots: int) -> str:
        return fixed(self.record.scales.quantity, lots)

    def quote(self, units: int) -> str:
        return fixed(self.record.scales.quote, units)

    def base(self, units: int) -> str:
        return fixed(self.record.scales.base, units)


class SymbolTable:
    def __init__(self, views: GatewayViews) -> None:
        self.views = views
        self._by_name: dict[str, str] = {}
        self._formats: dict[str, Formats] = {}

    def _index(self) -> None:
        self._by_name = {binance_symbol(s): s for s in self.views.instruments}

    def find(self, name: str) -> InstrumentRecord | None:
        key = name.upper()
        symbol = self._by_name.get(key)
        if symbol is None:
            self._index()
            symbol = self._by_name.get(key)
        return None if symbol is None else self.views.instruments.get(symbol)

    def lookup(self, name: str | None) -> InstrumentRecord:
        if name is None:
            raise missing("symbol")
        record = self.find(name)
        if record is None:
            raise invalid_symbol()
        return record

    def formats(self, symbol: str) -> Formats:
        found = self._formats.get(symbol)
        if found is None:
            record = self.views.instruments[symbol]
            found = self._formats[symbol] = Formats(record, binance_symbol(symbol))
        return found

    def all(self) -> list[InstrumentRecord]:
        return list(self.views.instruments.values())
