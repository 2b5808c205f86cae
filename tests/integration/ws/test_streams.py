"""Binance streams against a running node: control replies, trades and klines against REST,
depth diffs chaining, unknown path names ignored, bad frames and floods answered."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.ws.conftest import recv_json, recv_until, ws
from tests.support.node import NodeProcess


def _place(node: NodeProcess, key: tuple[str, str], side: str, price: str, qty: str) -> Any:
    response = node.signed("POST", "/v1/orders", {
        "symbol": "BTC-USDT", "side": side, "type": "limit", "price": price, "quantity": qty,
    }, key=key[0], secret=key[1])
    assert response.status_code == 201, response.text
    return response.json()


def test_subscribe_reply_echoes_the_id_type_and_unknown_path_names_are_ignored(
    ws_node: NodeProcess,
) -> None:
    with ws(f"{ws_node.ws_url}/ws/0") as conn:
        conn.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 7}))
        assert recv_json(conn) == {"result": None, "id": 7}
        conn.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@depth@100ms"],
                              "id": "abc"}))
        assert recv_json(conn) == {"result": None, "id": "abc"}
        conn.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
        assert sorted(recv_json(conn)["result"]) == ["btcusdt@depth@100ms", "btcusdt@trade"]
        conn.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": 2}))
        assert recv_json(conn) == {"result": None, "id": 2}


def test_bad_frames_get_errors_and_the_connection_stays(ws_node: NodeProcess) -> None:
    with ws(f"{ws_node.ws_url}/ws") as conn:
        conn.send("{not json")
        assert recv_json(conn)["error"]["code"] == 3
        conn.send(json.dumps({"method": "SUBSCRIBE", "params": ["nosuch@trade"], "id": 1}))
        assert recv_json(conn) == {
            "error": {"code": 2, "msg": "Invalid request: unknown stream 'nosuch@trade'"},
            "id": 1}
        conn.send(json.dumps({"method": "FLY", "id": 2}))
        assert recv_json(conn)["error"]["code"] == 0
        conn.send(json.dumps({"method": "SUBSCRIBE", "params": "x", "id": 3}))
        assert recv_json(conn)["error"]["code"] == 1
        conn.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 4}))
        assert recv_json(conn) == {"result": [], "id": 4}
        pong = conn.ping()
        assert pong.wait(5)


def test_a_flood_is_limited_with_one_error_and_the_connection_stays(
    ws_node: NodeProcess,
) -> None:
    with ws(f"{ws_node.ws_url}/ws") as conn:
        for i in range(200):
            conn.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
        replies = []
        while True:
            try:
                replies.append(recv_json(conn, timeout=0.5))
            except TimeoutError:
                break
        errors = [r for r in replies if "error" in r]
        assert errors
        assert len(replies) < 200
        # the next second's window serves the connection again
        answer = None
        for _ in range(20):
            conn.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": "after"}))
            try:
                answer = recv_until(conn, lambda m: m.get("id") == "after", timeout=0.2)
                break
            except TimeoutError:
                continue
        assert answer == {"result": [], "id": "after"}


def test_trade_and_kline_streams_agree_with_rest(ws_node: NodeProcess) -> None:
    maker = ws_node.trader(101, {"BTC": "10", "USDT": "1000000"})
    taker = ws_node.trader(102, {"BTC": "10", "USDT": "1000000"})
    streams = "btcusdt@trade/btcusdt@kline_1m/btcusdt@aggTrade"
    with ws(f"{ws_node.ws_url}/stream?streams={streams}") as conn:
        for i in range(5):
            _place(ws_node, maker, "sell", f"{30000 + i}.00", "0.010")
            _place(ws_node, taker, "buy", f"{30000 + i}.00", "0.010")
        trades: list[Any] = []
        kline: Any = None
        while len(trades) < 5 or kline is None or kline["k"]["n"] < 5:
            message = recv_json(conn)
            if message["stream"] == "btcusdt@trade":
                trades.append(message["data"])
            elif message["stream"] == "btcusdt@kline_1m":
                kline = message["data"]
    rest = ws_node.http.get("/v1/trades", params={"symbol": "BTC-USDT", "limit": 5}).json()
    assert [t["t"] for t in trades] == [t["trade_id"] for t in rest]
    assert [(t["p"], t["q"]) for t in trades] == [(t["price"], t["quantity"]) for t in rest]
    assert all(t["s"] == "BTCUSDT" and t["e"] == "trade" for t in trades)
    candles = ws_node.http.get("/v1/candles", params={
        "symbol": "BTC-USDT", "interval": "1m", "limit": 1}).json()
    last = candles[-1]
    k = kline["k"]
    assert (k["o"], k["h"], k["l"], k["c"], k["v"], k["n"]) == (
        last["open"], last["high"], last["low"], last["close"], last["volume"],
        last["trade_count"])
