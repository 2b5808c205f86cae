"""Node configuration: instruments, assets, fees and limits from TOML, with embedded defaults.

`load_config(path)` reads a TOML file; `load_config(None)` gives `DEFAULT_TOML` (BTC-USDT and
ETH-USDT on BTC, ETH and USDT). Unknown keys are refused so typos do not pass silently.

    [[assets]]
    code = "BTC"
    precision = 8

    [[instruments]]
    symbol = "BTC-USDT"          # base-quote
    base = "BTC"
    quote = "USDT"
    tick_size = "0.01"
    lot_size = "0.00001"
    min_notional = "1"           # optional: min_quantity, max_quantity, min_price, max_price

    [fees]                       # the default tier of accounts created without fees
    maker_fee_bps = 0
    taker_fee_bps = 0

    [limits]                     # per API key and per IP; 0 disables a budget
    key_weight_per_minute = 6000
    key_orders_per_10s = 100
    key_orders_per_day = 200000
    ip_weight_per_minute = 12000

    [sequencer]
    inbox_size = 65536

Instruments and assets are added on start when the journal does not have them yet (through
journaled admin commands); existing ones are never changed by the file.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import msgspec

from crossbook.domain.instruments import Asset, Instrument

DEFAULT_TOML = """
[[assets]]
code = "BTC"
precision = 8

[[assets]]
code = "ETH"
precision = 8

[[assets]]
code = "USDT"
precision = 8

[[instruments]]
symbol = "BTC-USDT"
base = "BTC"
quote = "USDT"
tick_size = "0.01"
lot_size = "0.00001"
min_notional = "1"

[[instruments]]
symbol = "ETH-USDT"
base = "ETH"
quote = "USDT"
tick_size = "0.01"
lot_size = "0.0001"
min_notional = "1"
"""


class _Section(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass


class AssetConfig(_Section, frozen=True):
    code: str
    precision: int


class InstrumentConfig(_Section, frozen=True):
    symbol: str
    base: str
    quote: str
    tick_size: str
    lot_size: str
    min_quantity: str | None = None
    max_quantity: str | None = None
    min_price: str | None = None
    max_price: str | None = None
    min_notional: str = "0"


class FeeConfig(_Section, frozen=True):
    maker_fee_bps: int = 0
    taker_fee_bps: int = 0


class LimitsConfig(_Section, frozen=True):
    key_weight_per_minute: int = 6_000
    key_orders_per_10s: int = 100
    key_orders_per_day: int = 200_000
    ip_weight_per_minute: int = 12_000
    ip_orders_per_10s: int = 0
    ip_orders_per_day: int = 0


class SequencerSection(_Section, frozen=True):
    inbox_size: int = 65_536
    max_batch: int = 65_536


class NodeConfig(_Section, frozen=True):
    assets: list[AssetConfig] = msgspec.field(default_factory=list)
    instruments: list[InstrumentConfig] = msgspec.field(default_factory=list)
    fees: FeeConfig = msgspec.field(default_factory=FeeConfig)
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    sequencer: SequencerSection = msgspec.field(default_factory=SequencerSection)

    def domain_assets(self) -> list[Asset]:
        return [Asset(a.code, a.precision) for a in self.assets]

    def domain_instruments(self) -> list[Instrument]:
        """Instruments with their steps checked (`ValueError` on a bad configuration)."""
        assets = {a.code: a for a in self.domain_assets()}
        out = []
        for i in self.instruments:
            if i.base not in assets or i.quote not in assets:
                raise ValueError(f"{i.symbol}: declare assets {i.base} and {i.quote} first")
            out.append(Instrument.create(
                i.symbol, assets[i.base], assets[i.quote], i.tick_size, i.lot_size,
                min_qty=i.min_quantity, max_qty=i.max_quantity, min_price=i.min_price,
                max_price=i.max_price, min_notional=i.min_notional,
            ))
        return out


def parse_config(text: str) -> NodeConfig:
    try:
        return msgspec.convert(tomllib.loads(text), NodeConfig)
    except (tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"invalid configuration: {exc}") from None


def load_config(path: Path | None) -> NodeConfig:
    return parse_config(DEFAULT_TOML if path is None else path.read_text())
