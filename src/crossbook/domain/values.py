"""Integer value types used everywhere money, sizes, time and identity appear.

Contract: every price is an integer number of ticks, every size an integer number of lots,
every balance an integer number of the asset's smallest units. Floats never carry money.
`NewType` keeps these apart for the type checker at no run-time cost.
"""

from typing import NewType

Ticks = NewType("Ticks", int)
"""A price as a whole number of the instrument's tick size."""

Lots = NewType("Lots", int)
"""A size as a whole number of the instrument's lot size."""

Units = NewType("Units", int)
"""An amount of an asset in its smallest unit (10**-precision)."""

Seq = NewType("Seq", int)
"""The sequencer's position of a command in the one ordered log (starts at 1)."""

Nanos = NewType("Nanos", int)
"""Nanoseconds since the Unix epoch, stamped by the sequencer; the core never reads a clock."""

OrderId = NewType("OrderId", int)
AccountId = NewType("AccountId", int)
TradeId = NewType("TradeId", int)
