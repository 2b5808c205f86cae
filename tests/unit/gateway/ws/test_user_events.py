"""User data events without sockets: `executionReport` `Z` (cumulative quote) is exact per
event, for several fills of one order in one batch and for fills spread over batches, and
nothing is encoded while no user topic exists."""

from __future__ import annotations

import json

from crossbook.domain import commands as cmd
from crossbook.domain.enums import OrderType, Side, TimeInForce
from crossbook.domain.values import AccountId, Lots, Ticks
from crossbook.engine.exchange import Exchange
from crossbook.gateway.views import GatewayViews
from crossbook.gateway.ws.fanout import Hub, Mode
from crossbook.gateway.ws.user import UserEvents
from crossbook.sequencer.ports import Applied
from crossbook.sequencer.workload import setup_commands

SYMBOL = "S0-USD"


class Venue:
    def __init__(self) -> None:
        self.engine, self.views, self.hub = Exchange(), GatewayViews(), Hub()
        self.user = UserEvents(self.hub, self.views)
        self.seq, self.ts = 0, 1_700_000_000_000_000_000
        self.batch(setup_commands(1, accounts=3))

    def batch(self, commands: list[cmd.Command]) -> list[dict[str, object]]:
        """Apply `commands` as one durable batch; the execution reports of account 1."""
        self.ts += 1_000_000
        applied = []
        for command in commands:
            self.seq += 1
            events = self.engine.apply(self.seq, self.ts, command)
            applied.append(Applied(self.seq, self.ts, command, events))
        self.views.on_batch(applied)
        self.user.on_batch(applied)
        topic = self.hub.topics.get("user@1")
        if topic is None:
            return []
        reports = [json.loads(p) for p in topic.pending]
        topic.pending.clear()
        return [r for r in reports if r["e"] == "executionReport"]


def limit(account: int, side: Side, qty: int, price: int, cid: str) -> cmd.PlaceOrder:
    return cmd.PlaceOrder(
        AccountId(account), SYMBOL, side, OrderType.LIMIT, qty=Lots(qty), price=Ticks(price),
        tif=TimeInForce.GTC, client_order_id=cid,
    )


def test_cumulative_quote_runs_through_fills_of_one_batch() -> None:
    venue = Venue()
    venue.hub.topic("user@1", Mode.APPEND)
    venue.batch([limit(2, Side.SELL, 1, 100, "a"), limit(3, Side.SELL, 1, 101, "b")])
    reports = venue.batch([limit(1, Side.BUY, 2, 101, "taker")])
    assert [(r["x"], r["l"], r["Y"], r["Z"]) for r in reports] == [
        ("NEW", "0", "0", "0"),
        ("TRADE", "1", "100", "100"),
        ("TRADE", "1", "101", "201"),
    ]


def test_cumulative_quote_carries_across_batches() -> None:
    venue = Venue()
    venue.hub.topic("user@1", Mode.APPEND)
    venue.batch([limit(1, Side.BUY, 3, 99, "maker")])
    first = venue.batch([limit(2, Side.SELL, 1, 99, "s1")])
    second = venue.batch([limit(3, Side.SELL, 1, 99, "s2"), limit(2, Side.SELL, 1, 99, "s3")])
    assert [r["Z"] for r in first] == ["99"]
    assert [(r["z"], r["Z"]) for r in second] == [("2", "198"), ("3", "297")]
    assert second[-1]["X"] == "FILLED"


def test_a_late_subscriber_sees_the_order_s_whole_history_in_z() -> None:
    venue = Venue()
    venue.batch([limit(1, Side.BUY, 2, 99, "maker")])
    assert venue.batch([limit(2, Side.SELL, 1, 99, "s1")]) == []  # nobody listens yet
    venue.hub.topic("user@1", Mode.APPEND)
    reports = venue.batch([limit(3, Side.SELL, 1, 99, "s2")])
    assert [(r["z"], r["Z"]) for r in reports] == [("2", "198")]


def test_each_dialect_gets_its_own_shape() -> None:
    venue = Venue()
    native = venue.hub.topic("user:1", Mode.APPEND)
    venue.batch([limit(2, Side.SELL, 1, 100, "a")])
    venue.batch([limit(1, Side.BUY, 1, 100, "taker")])
    events = [json.loads(p) for p in native.pending]
    assert "user@1" not in venue.hub.topics
    orders = [e for e in events if e.get("channel") == "orders"]
    assert [o["event"] for o in orders] == ["accepted", "trade"]
    assert orders[-1]["status"] == "filled"


def test_only_followed_accounts_get_events_and_market_topics_are_not_accounts() -> None:
    venue = Venue()
    mine = venue.hub.topic("user:1", Mode.APPEND)
    market = venue.hub.topic("user@trade", Mode.APPEND)  # a stream of a symbol named "user"
    venue.batch([limit(2, Side.SELL, 1, 100, "maker"), limit(3, Side.SELL, 1, 101, "other")])
    assert not mine.pending  # accounts 2 and 3 have no topic
    venue.batch([limit(1, Side.BUY, 2, 101, "taker")])
    events = [json.loads(p) for p in mine.pending]
    assert {e["channel"] for e in events} == {"orders", "balances"}
    assert [e["event"] for e in events if e["channel"] == "orders"] == [
        "accepted", "trade", "trade"]
    assert not market.pending
