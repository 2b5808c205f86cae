"""Native order entry over `/v1/ws` (login, pipelining, ids echoed, replies after durability)
and user events on both dialects following one order's lifecycle."""

from __future__ import annotations

import json
from typing import Any

from crossbook.domain.rejects import Reject
from tests.integration.ws.conftest import login_message, recv_json, recv_until, ws
from tests.support.node import NodeProcess


def _order(price: str, side: str = "buy", qty: str = "0.010", cid: str = "") -> dict[str, Any]:
    return {"symbol": "BTC-USDT", "side": side, "type": "limit", "price": price,
            "quantity": qty, "client_order_id": cid}


def test_order_entry_needs_login_and_pipelines_with_ids_echoed(ws_node: NodeProcess) -> None:
    key, secret = ws_node.trader(401, {"BTC": "10", "USDT": "1000000"})
    with ws(f"{ws_node.ws_url}/v1/ws") as conn:
        conn.send(json.dumps({"op": "place", "id": "early", "order": _order("100.00")}))
        assert recv_json(conn)["error"]["code"] == 10004
        conn.send(login_message(key, "wrong-secret", request_id=0))
        assert recv_json(conn)["error"]["code"] == 10004
        conn.send(login_message(key, secret))
        assert recv_json(conn) == {"id": 1, "result": {"account": 401}}
        for i in range(50):
            conn.send(json.dumps({"op": "place", "id": i, "order": _order(f"{100 + i}.00")}))
        replies = [recv_json(conn) for _ in range(50)]
        assert sorted(r["id"] for r in replies) == list(range(50))
        placed = {r["id"]: r["result"] for r in replies}
        assert placed[7]["price"] == "107.00"
        assert placed[7]["status"] == "new"
        rest = ws_node.signed("GET", f"/v1/orders/{placed[7]['order_id']}", key=key,
                              secret=secret)
        assert rest.json()["status"] == "new"  # durable before the reply
        conn.send(json.dumps({"op": "amend", "id": "a", "order_id": placed[7]["order_id"],
                              "price": "150.50"}))
        amended = recv_json(conn)
        assert amended.get("result", {}).get("price") == "150.50", amended
        conn.send(json.dumps({"op": "cancel", "id": "c", "order_id": placed[8]["order_id"]}))
        assert recv_json(conn)["result"]["status"] == "canceled"
        conn.send(json.dumps({"op": "cancel", "id": "x", "order_id": 10**9}))
        assert recv_json(conn)["error"]["code"] == Reject.UNKNOWN_ORDER
        conn.send(json.dumps({"op": "place", "id": "bad", "order": {"symbol": "NOPE"}}))
        assert "error" in recv_json(conn)
        conn.send(json.dumps({"op": "place", "id": "poor",
                              "order": _order("100.00", side="sell", qty="11.000")}))
        refused = recv_json(conn)  # refused by the engine, after the journal
        assert (refused["id"], refused["error"]["code"]) == ("poor", Reject.INSUFFICIENT_FUNDS)
        conn.send(json.dumps({"op": "cancel_all", "id": "all", "symbol": "BTC-USDT"}))
        result = recv_json(conn)["result"]
        assert len(result["canceled"]) == 49


def test_user_events_follow_the_order_lifecycle_on_both_dialects(ws_node: NodeProcess) -> None:
    maker_key, maker_secret = ws_node.trader(402, {"BTC": "10", "USDT": "1000000"})
    taker_key, taker_secret = ws_node.trader(403, {"BTC": "10", "USDT": "1000000"})
    listen = ws_node.http.post("/api/v3/userDataStream", headers={"X-MBX-APIKEY": maker_key})
    assert listen.status_code == 200, listen.text
    listen_key = listen.json()["listenKey"]
    with ws(f"{ws_node.ws_url}/v1/ws") as native, \
            ws(f"{ws_node.ws_url}/ws/{listen_key}") as binance, \
            ws(f"{ws_node.ws_url}/v1/ws") as taker:
        native.send(login_message(maker_key, maker_secret))
        recv_json(native)
        native.send(json.dumps({"op": "subscribe", "id": 2, "channel": "user"}))
        assert recv_json(native) == {"id": 2, "result": "subscribed"}
        taker.send(login_message(taker_key, taker_secret))
        recv_json(taker)
        native.send(json.dumps({"op": "place", "id": 3,
                                "order": _order("500.00", "sell", "0.020", "mk-1")}))
        seen: list[Any] = []
        recv_until(native, lambda m: seen.append(m) or m.get("id") == 3)
        taker.send(json.dumps({"op": "place", "id": 1, "order": _order("500.00", "buy")}))
        recv_json(taker)
        native.send(json.dumps({"op": "cancel", "id": 4, "client_order_id": "mk-1"}))
        recv_until(native, lambda m: seen.append(m) or m.get("id") == 4)

        reports = []
        while len(reports) < 3:
            m = recv_json(binance)
            if m["e"] == "executionReport":
                reports.append(m)
            else:
                assert m["e"] == "outboundAccountPosition"
                assert {b["a"] for b in m["B"]} <= {"BTC", "USDT"}
        assert [(r["x"], r["X"]) for r in reports] == [
            ("NEW", "NEW"), ("TRADE", "PARTIALLY_FILLED"), ("CANCELED", "CANCELED")]
        assert all(r["c"] == "mk-1" and r["s"] == "BTCUSDT" for r in reports)
        assert (reports[1]["l"], reports[1]["z"], reports[1]["L"]) == (
            "0.01000", "0.01000", "500.00")
        assert reports[1]["m"] is True

        events = [m for m in seen if m.get("channel") == "orders"]
        while len(events) < 3:
            m = recv_json(native)
            if m.get("channel") == "orders":
                events.append(m)
        assert [(e["event"], e["status"]) for e in events] == [
            ("accepted", "new"), ("trade", "partially_filled"), ("canceled", "canceled")]
        assert events[1]["liquidity"] == "maker"
