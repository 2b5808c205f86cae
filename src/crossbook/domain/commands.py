"""Commands: what a client or operator asks the exchange to do, named as imperatives.

A command is a frozen msgspec struct. The sequencer stamps it with `(seq, ts)` and journals
it; `Exchange.apply` folds it into the state. Commands are the journal's payload, so they
follow msgspec's schema-evolution rules: fields are only ever appended, always with defaults,
and no field changes type. Tags are short and stable.

Zero means "not given" for optional integers (price of a market order, stop price, expire
time, iceberg visible size, quote quantity), and "" for an optional client order id.
"""

from __future__ import annotations

from typing import Union

import msgspec

from crossbook.domain.enums import OrderType, Side, StpMode, TimeInForce
from crossbook.domain.instruments import Asset, Instrument
from crossbook.domain.values import AccountId, Lots, Nanos, OrderId, Ticks, Units


class _Command(msgspec.Struct, frozen=True, array_like=True, gc=False, tag_field="t"):
    pass


class PlaceOrder(_Command, frozen=True, tag="po"):
    account: AccountId
    symbol: str
    side: Side
    type: OrderType
    qty: Lots = Lots(0)
    """Base size in lots; 0 for a market buy sized by `quote_qty`."""
    price: Ticks = Ticks(0)
    """Limit price; 0 for market and stop-market orders."""
    tif: TimeInForce = TimeInForce.GTC
    quote_qty: Units = Units(0)
    """Market buy only: quote units to spend (fees come on top)."""
    stop_price: Ticks = Ticks(0)
    expire_ts: Nanos = Nanos(0)
    """GTD only: the order expires at this stamp."""
    post_only: bool = False
    visible_qty: Lots = Lots(0)
    """Iceberg: lots shown at a time; 0 shows the whole order."""
    stp: StpMode = StpMode.NONE
    client_order_id: str = ""


class CancelOrder(_Command, frozen=True, tag="co"):
    account: AccountId
    symbol: str
    order_id: OrderId = OrderId(0)
    client_order_id: str = ""


class CancelAllOrders(_Command, frozen=True, tag="ca"):
    account: AccountId
    symbol: str


class AmendOrder(_Command, frozen=True, tag="ao"):
    """Change price and/or total size. A size decrease alone keeps time priority."""

    account: AccountId
    symbol: str
    order_id: OrderId = OrderId(0)
    client_order_id: str = ""
    qty: Lots = Lots(0)
    """New total size (filled part included); 0 keeps it."""
    price: Ticks = Ticks(0)
    """New limit price; 0 keeps it."""


class ExpireOrders(_Command, frozen=True, tag="xo"):
    """Expire every GTD order due at the stamp's time. Enqueued by the sequencer's timer."""


class CreateAccount(_Command, frozen=True, tag="ac"):
    account: AccountId
    maker_fee_bps: int = 0
    taker_fee_bps: int = 0


class SetFees(_Command, frozen=True, tag="sf"):
    account: AccountId
    maker_fee_bps: int
    taker_fee_bps: int


class Deposit(_Command, frozen=True, tag="dp"):
    account: AccountId
    asset: str
    amount: Units
    tx_id: str


class Withdraw(_Command, frozen=True, tag="wd"):
    account: AccountId
    asset: str
    amount: Units
    tx_id: str


class AddAsset(_Command, frozen=True, tag="aa"):
    asset: Asset


class AddInstrument(_Command, frozen=True, tag="ai"):
    instrument: Instrument


class HaltTrading(_Command, frozen=True, tag="ht"):
    symbol: str


class ResumeTrading(_Command, frozen=True, tag="rt"):
    symbol: str


class CreateApiKey(_Command, frozen=True, tag="ck"):
    """Register an API key. The secret is journaled with the key so that keys survive
    restarts; the gateway generates both, the engine only checks and records them."""

    key: str
    secret: str
    account: AccountId
    """The account the key trades for; 0 for an operator key that holds no account."""
    permissions: int
    """`Permission` flags."""
    label: str = ""


class RevokeApiKey(_Command, frozen=True, tag="rk"):
    key: str


TradingCommand = Union[PlaceOrder, CancelOrder, CancelAllOrders, AmendOrder, ExpireOrders]
AdminCommand = Union[
    CreateAccount,
    SetFees,
    Deposit,
    Withdraw,
    AddAsset,
    AddInstrument,
    HaltTrading,
    ResumeTrading,
    CreateApiKey,
    RevokeApiKey,
]
Command = Union[
    PlaceOrder,
    CancelOrder,
    CancelAllOrders,
    AmendOrder,
    ExpireOrders,
    CreateAccount,
    SetFees,
    Deposit,
    Withdraw,
    AddAsset,
    AddInstrument,
    HaltTrading,
    ResumeTrading,
    CreateApiKey,
    RevokeApiKey,
]
