"""Per-key order rate limits on native `/v1/ws` order entry of a real node: REST, binary and
WebSocket orders of one key count together; an over-limit `place` gets an error reply
`GATEWAY_RATE_LIMITED` echoing its `id` at once and never reaches the journal; the
connection stays open and orders in the next window work."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from crossbook.client.binary import BinaryClient
from crossbook.config import DEFAULT_TOML
from crossbook.domain.enums import OrderType, Side
from crossbook.domain.rejects import Reject
from crossbook.protocol.binary_messages import AcceptedReport
from tests.integration.ws.conftest import login_message, recv_json, ws
from tests.support.journal_reads import journaled_orders
from tests.support.node import NodeProcess

ORDERS_PER_10S = 6
LIMITED = DEFAULT_TOML + f"""
[limits]
key_weight_per_minute = 100000
key_orders_per_10s = {ORDERS_PER_10S}
key_orders_per_day = 100000
ip_weight_per_minute = 0
"""
FUNDS = {"BTC": "10", "USDT": "1000000"}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    process = NodeProcess(tmp_path_factory.mktemp("wslim") / "data", LIMITED)
    process.start()
    try:
        yield process
    finally:
        process.close()


def _order(price: str) -> dict[str, Any]:
    return {"symbol": "BTC-USDT", "side": "buy", "type": "limit", "price": price,
            "quantity": "0.010"}


def _wait_for_room(margin_s: float = 4.0) -> None:
    into = time.time() % 10
    if into > 10 - margin_s:
        time.sleep(10 - into + 0.05)


def _one_binary_order(node: NodeProcess, key: str, secret: str) -> None:
    async def run() -> None:
        path = str(node.data_dir / "binary.sock")
        async with BinaryClient(key, secret.encode(), path=path) as client:
            report = await client.new_order("BTC-USDT", Side.BUY, OrderType.LIMIT,
                                            qty=1_000, price=1_000_000)
            assert isinstance(report, AcceptedReport), report

    asyncio.run(run())


def test_ws_orders_share_the_key_budget_with_rest_and_binary(node: NodeProcess) -> None:
    account = 441
    key, secret = node.trader(account, FUNDS)
    with ws(f"{node.ws_url}/v1/ws") as conn:
        conn.send(login_message(key, secret))
        assert recv_json(conn) == {"id": 1, "result": {"account": account}}
        _wait_for_room()
        rest = node.signed("POST", "/v1/orders", _order("100.00"), key=key, secret=secret)
        assert rest.status_code == 201, rest.text
        _one_binary_order(node, key, secret)
        for i in range(6):
            conn.send(json.dumps({"op": "place", "id": f"p{i}", "order": _order(f"{101 + i}.00")}))
        replies = {r["id"]: r for r in (recv_json(conn) for _ in range(6))}
        placed = [i for i, r in replies.items() if "result" in r]
        refused = [i for i, r in replies.items() if "error" in r]
        assert len(placed) == ORDERS_PER_10S - 2
        assert sorted(refused) == ["p4", "p5"]  # refused at once, ids echoed
        for request_id in refused:
            error = replies[request_id]["error"]
            assert error["code"] == Reject.GATEWAY_RATE_LIMITED
            assert "orders per 10 s" in error["message"]
        rest = node.signed("POST", "/v1/orders", _order("99.00"), key=key, secret=secret)
        assert (rest.status_code, rest.json()["code"]) == (429, Reject.GATEWAY_RATE_LIMITED)
        assert journaled_orders(node.data_dir, account) == ORDERS_PER_10S
        # the connection stays open; a cancel is weighed but is not an order
        conn.send(json.dumps({"op": "ping", "id": "alive"}))
        assert recv_json(conn) == {"id": "alive", "result": "pong"}
        order_id = replies[placed[0]]["result"]["order_id"]
        conn.send(json.dumps({"op": "cancel", "id": "c", "order_id": order_id}))
        assert recv_json(conn)["result"]["status"] == "canceled"
        time.sleep(10 - time.time() % 10 + 0.05)  # the next window
        conn.send(json.dumps({"op": "place", "id": "next", "order": _order("110.00")}))
        again = recv_json(conn)
        assert again["id"] == "next"
        assert again["result"]["status"] == "new", again
    assert journaled_orders(node.data_dir, account) == ORDERS_PER_10S + 1


def test_ws_under_the_limit_is_unchanged(node: NodeProcess) -> None:
    account = 442
    key, secret = node.trader(account, FUNDS)
    with ws(f"{node.ws_url}/v1/ws") as conn:
        conn.send(login_message(key, secret))
        recv_json(conn)
        _wait_for_room()
        for i in range(ORDERS_PER_10S):
            conn.send(json.dumps({"op": "place", "id": i, "order": _order(f"{150 + i}.00")}))
        replies = [recv_json(conn) for _ in range(ORDERS_PER_10S)]
        assert all("result" in r for r in replies), replies
    assert journaled_orders(node.data_dir, account) == ORDERS_PER_10S
