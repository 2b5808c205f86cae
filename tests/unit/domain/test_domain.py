"""The domain vocabulary: instruments and their steps, reject stages, enums, wire shapes."""

from __future__ import annotations

import msgspec
import pytest

from crossbook.domain import commands as cmd
from crossbook.domain import events as ev
from crossbook.domain.enums import OrderStatus, OrderType, Side, TimeInForce
from crossbook.domain.instruments import Asset, Instrument
from crossbook.domain.rejects import Reject
from crossbook.domain.values import AccountId, Lots, Ticks

BTC8, USDT6 = Asset("BTC", 8), Asset("USDT", 6)


def test_an_instrument_counts_sizes_in_lots_and_notionals_in_quote_units() -> None:
    inst = Instrument.create("BTC-USDT", BTC8, USDT6, "0.01", "0.0001", min_notional="5")
    assert (inst.lot_units, inst.notional_units) == (10_000, 1)
    assert inst.min_notional == 5_000_000
    # 0.5 BTC at 30000.00 = 15000 USDT
    assert inst.notional(3_000_000, 5_000) == 15_000 * 10**6
    assert (inst.min_qty, inst.min_price) == (1, 1)


def test_an_instrument_converts_its_bounds_to_steps() -> None:
    inst = Instrument.create(
        "BTC-USDT", BTC8, USDT6, "0.5", "0.001", min_qty="0.01", max_qty="100",
        min_price="10", max_price="100000",
    )  # fmt: skip
    assert (inst.min_qty, inst.max_qty) == (10, 100_000)
    assert (inst.min_price, inst.max_price) == (20, 200_000)


@pytest.mark.parametrize(
    ("tick", "lot", "words"),
    [
        ("0.01", "0.000000001", "lot size"),  # finer than 8 base decimals
        ("0.0000001", "0.0001", "finer than USDT"),  # tick x lot finer than 6 quote decimals
        ("0", "1", "positive"),
        ("1", "-1", "positive"),
    ],
)
def test_an_instrument_refuses_steps_finer_than_its_assets_precision(
    tick: str, lot: str, words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        Instrument.create("BTC-USDT", BTC8, USDT6, tick, lot)


def test_an_instrument_refuses_bounds_off_its_grid() -> None:
    with pytest.raises(ValueError, match="multiple"):
        Instrument.create("BTC-USDT", BTC8, USDT6, "0.5", "1", min_price="0.7")
    with pytest.raises(ValueError, match="min notional"):
        Instrument.create("BTC-USDT", BTC8, USDT6, "1", "1", min_notional="0.0000001")


@pytest.mark.parametrize(
    ("code", "stage"),
    [
        (Reject.UNKNOWN_SYMBOL, "validation"),
        (Reject.INVALID_AMOUNT, "validation"),
        (Reject.INSUFFICIENT_FUNDS, "risk"),
        (Reject.FOK_CANNOT_FILL, "matching"),
        (Reject.AMEND_BELOW_FILLED, "matching"),
        (Reject.DUPLICATE_TRANSACTION, "admin"),
        (Reject.GATEWAY_THROTTLED, "gateway"),
    ],
)
def test_a_reject_code_names_its_stage(code: Reject, stage: str) -> None:
    assert code.stage == stage


def test_every_reject_code_has_a_stage() -> None:
    for code in Reject:
        assert code.stage in {"validation", "risk", "matching", "admin", "gateway"}


def test_order_types_and_statuses_classify_themselves() -> None:
    assert [t for t in OrderType if t.is_stop] == [
        OrderType.STOP_LOSS,
        OrderType.STOP_LOSS_LIMIT,
        OrderType.TAKE_PROFIT,
        OrderType.TAKE_PROFIT_LIMIT,
    ]
    assert [t for t in OrderType if t.is_market] == [
        OrderType.MARKET,
        OrderType.STOP_LOSS,
        OrderType.TAKE_PROFIT,
    ]
    assert [s for s in OrderStatus if s.is_open] == [
        OrderStatus.NEW,
        OrderStatus.PARTIALLY_FILLED,
    ]
    assert Side.BUY.opposite is Side.SELL
    assert Side.SELL.opposite is Side.BUY


def test_commands_round_trip_through_msgpack_with_their_defaults() -> None:
    place = cmd.PlaceOrder(AccountId(1), "BTC-USDT", Side.BUY, OrderType.LIMIT, Lots(2), Ticks(9))
    data = msgspec.msgpack.encode(place)
    back = msgspec.msgpack.decode(data, type=cmd.Command)
    assert back == place
    assert back.tif is TimeInForce.GTC
    assert (back.quote_qty, back.stop_price, back.client_order_id) == (0, 0, "")


def test_events_round_trip_through_msgpack() -> None:
    event = ev.OrderRejected(AccountId(1), "BTC-USDT", "c-1", Reject.NO_LIQUIDITY, "no liquidity")
    back = msgspec.msgpack.decode(msgspec.msgpack.encode(event), type=ev.Event)
    assert back == event
    assert back.code is Reject.NO_LIQUIDITY
    assert back.order_id == 0


def test_instruments_round_trip_through_msgpack() -> None:
    inst = Instrument.create("BTC-USDT", BTC8, USDT6, "0.01", "0.0001", max_price="1000000")
    data = msgspec.msgpack.encode(cmd.AddInstrument(inst))
    assert msgspec.msgpack.decode(data, type=cmd.Command) == cmd.AddInstrument(inst)
