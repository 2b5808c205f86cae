"""Integer value types used everywhere money, sizes, time and identity appear.

Contract: every price is an integer number of ticks, every size an integer number of lots,
every balance an integer number of the asset's smallest units. Floats never carry money.
They are type aliases of `int`, named for the reader: a `typing.NewType` would cost a Python
call per construction on the hot path (about 0.25 us on CPython 3.11), more than a whole
book insertion, so the names document intent and the tests hold the units apart.
"""

from typing import TypeAlias

Ticks: TypeAlias = int
"""A price as a whole number of the instrument's tick size."""

Lots: TypeAlias = int
"""A size as a whole number of the instrument's lot size."""

Units: TypeAlias = int
"""An amount of an asset in its smallest unit (10**-precision)."""

Seq: TypeAlias = int
"""The sequencer's position of a command in the one ordered log (starts at 1)."""

Nanos: TypeAlias = int
"""Nanoseconds since the Unix epoch, stamped by the sequencer; the core never reads a clock."""

OrderId: TypeAlias = int
AccountId: TypeAlias = int
TradeId: TypeAlias = int
