"""Event and batch builders for the market data tests."""

from crossbook.domain.commands import HaltTrading
from crossbook.domain.enums import OrderStatus, Side
from crossbook.domain.events import DepthChanged, Event, TradeExecuted
from crossbook.domain.values import AccountId, Lots, OrderId, Ticks, TradeId, Units
from crossbook.sequencer.ports import Applied

SYMBOL = "BTCUSDT"


def trade(
    trade_id: int,
    price: int,
    qty: int,
    *,
    taker: int = 7,
    taker_side: Side = Side.BUY,
    symbol: str = SYMBOL,
) -> TradeExecuted:
    """A fill of `qty` at `price`; quote quantity is `price * qty * 10` units."""
    return TradeExecuted(
        trade_id=TradeId(trade_id),
        symbol=symbol,
        price=Ticks(price),
        qty=Lots(qty),
        quote_qty=Units(price * qty * 10),
        taker_side=taker_side,
        maker_order_id=OrderId(1000 + trade_id),
        maker_account=AccountId(2),
        maker_fee=Units(0),
        maker_filled=Lots(qty),
        maker_status=OrderStatus.FILLED,
        taker_order_id=OrderId(taker),
        taker_account=AccountId(1),
        taker_fee=Units(0),
        taker_filled=Lots(qty),
        taker_status=OrderStatus.PARTIALLY_FILLED,
    )


def depth(
    update_id: int,
    bids: list[tuple[int, int, int]] | None = None,
    asks: list[tuple[int, int, int]] | None = None,
    symbol: str = SYMBOL,
) -> DepthChanged:
    return DepthChanged(symbol, update_id, bids or [], asks or [])


def applied(seq: int, ts: int, *events: Event) -> Applied:
    """One stamped command (its kind does not matter to market data) and its events."""
    return Applied(seq, ts, HaltTrading(SYMBOL), list(events))
