"""Native order entry against a running node: the old system's body, queries, amend,
cancel (by id, client id, all), fills, balances, and the engine's rejections as 4xx."""

from __future__ import annotations

import itertools

from tests.support.node import NodeProcess

_accounts = itertools.count(100)
OLD_BODY = {"symbol": "BTC-USDT", "order_type": "limit", "side": "buy", "quantity": "0.1",
            "price": "60000"}


def _trader(node: NodeProcess, **funds: str) -> tuple[str, str, int]:
    account = next(_accounts)
    key, secret = node.trader(account, funds or {"USDT": "1000000", "BTC": "100", "ETH": "100"})
    return key, secret, account


def test_old_system_body_works_as_is(node: NodeProcess) -> None:
    key, secret, _ = _trader(node)
    response = node.signed("POST", "/v1/orders", OLD_BODY, key=key, secret=secret)
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "new"
    assert order["type"] == "limit"
    assert order["price"] == "60000.00"
    assert order["quantity"] == "0.10000"
    assert order["fills"] == []
    assert int(response.headers["x-cb-order-count-10s"]) >= 1
    got = node.signed("GET", f"/v1/orders/{order['order_id']}", key=key, secret=secret)
    assert got.json()["order_id"] == order["order_id"]
    balances = {b["asset"]: b for b in node.signed(
        "GET", "/v1/balances", key=key, secret=secret).json()}
    assert balances["USDT"]["locked"] == "6000.00000000"


def test_trade_fills_and_public_market_data(node: NodeProcess) -> None:
    maker = _trader(node)
    taker = _trader(node)
    sell = {"symbol": "ETH-USDT", "type": "limit", "side": "sell", "quantity": "2",
            "price": "3000", "client_order_id": "m-1"}
    resting = node.signed("POST", "/v1/orders", sell, key=maker[0], secret=maker[1]).json()
    buy = {"symbol": "ETH-USDT", "type": "market", "side": "buy", "quantity": "0.5"}
    done = node.signed("POST", "/v1/orders", buy, key=taker[0], secret=taker[1])
    assert done.status_code == 201, done.text
    body = done.json()
    assert body["status"] == "filled"
    assert body["fills"][0]["price"] == "3000.00"
    assert body["fills"][0]["liquidity"] == "taker"
    maker_view = node.signed("GET", "/v1/orders/client/m-1", key=maker[0],
                             secret=maker[1]).json()
    assert maker_view["status"] == "partially_filled"
    assert maker_view["filled_quantity"] == "0.5000"
    fills = node.signed("GET", "/v1/fills?symbol=ETH-USDT", key=maker[0], secret=maker[1])
    assert fills.json()[0]["liquidity"] == "maker"
    assert fills.json()[0]["order_id"] == resting["order_id"]
    trades = node.http.get("/v1/trades", params={"symbol": "ETH-USDT"}).json()
    assert trades[-1]["price"] == "3000.00"
    assert trades[-1]["taker_side"] == "buy"
    depth = node.http.get("/v1/depth", params={"symbol": "ETH-USDT"}).json()
    assert depth["asks"] == [["3000.00", "1.5000"]]
    assert depth["last_update_id"] >= 2
    ticker = node.http.get("/v1/ticker", params={"symbol": "ETH-USDT"}).json()
    assert ticker["last"] == "3000.00"
    candles = node.http.get("/v1/candles", params={"symbol": "ETH-USDT", "interval": "1m"})
    assert candles.json()[-1]["close"] == "3000.00"
    assert node.http.get("/v1/time").json()["time"] > 0


def test_amend_cancel_and_cancel_all(node: NodeProcess) -> None:
    key, secret, _ = _trader(node)

    def call(method: str, path: str, body: object = None) -> object:
        return node.signed(method, path, body, key=key, secret=secret)

    first = call("POST", "/v1/orders", {**OLD_BODY, "price": "50000",
                                        "client_order_id": "a-1"}).json()  # type: ignore[union-attr]
    amended = call("PATCH", f"/v1/orders/{first['order_id']}", {"price": "50001"})
    assert amended.status_code == 200, amended.text  # type: ignore[union-attr]
    assert amended.json()["price"] == "50001.00"  # type: ignore[union-attr]
    canceled = call("DELETE", "/v1/orders/client/a-1")
    assert canceled.json()["status"] == "canceled"  # type: ignore[union-attr]
    again = call("DELETE", f"/v1/orders/{first['order_id']}")
    assert again.status_code == 409  # type: ignore[union-attr]
    assert again.json()["code"] == 3003  # type: ignore[union-attr]
    for price in ("40000", "40001"):
        call("POST", "/v1/orders", {**OLD_BODY, "price": price})
    assert len(call("GET", "/v1/orders?symbol=BTC-USDT").json()) == 2  # type: ignore[union-attr]
    result = call("DELETE", "/v1/orders?symbol=BTC-USDT").json()  # type: ignore[union-attr]
    assert len(result["canceled"]) == 2
    assert call("GET", "/v1/orders").json() == []  # type: ignore[union-attr]
    history = call("GET", "/v1/orders/history?limit=10").json()  # type: ignore[union-attr]
    assert [o["status"] for o in history] == ["canceled"] * 3


def test_engine_and_decimal_rejections(node: NodeProcess) -> None:
    key, secret, _ = _trader(node, USDT="100")

    def place(**changes: object) -> tuple[int, int]:
        response = node.signed("POST", "/v1/orders", {**OLD_BODY, **changes}, key=key,
                               secret=secret)
        body = response.json()
        assert set(body) == {"code", "message"}
        return response.status_code, body["code"]

    assert place(price="60000.001") == (400, 1004)
    assert place(quantity="0.000001") == (400, 1003)
    assert place(quantity="-1") == (400, 1003)
    assert place(symbol="DOGE-USDT") == (400, 1001)
    assert place() == (400, 2001)
    assert place(order_type=None) == (400, 10003)
    assert place(side="hold") == (400, 10003)
    assert place(time_in_force="GTD") == (400, 1009)
    assert place(unexpected=1) == (400, 10003)
    response = node.signed("GET", "/v1/orders/999999", key=key, secret=secret)
    assert (response.status_code, response.json()["code"]) == (404, 3002)
    response = node.signed("GET", "/v1/orders/abc", key=key, secret=secret)
    assert response.status_code == 400
    bad = node.http.post("/v1/orders", content=b"{not json", headers={
        "X-CB-APIKEY": key})
    assert bad.status_code == 401


def test_halt_and_resume(node: NodeProcess) -> None:
    key, secret, _ = _trader(node)
    assert node.admin("POST", "/v1/admin/instruments/ETH-USDT/halt")["status"] == "halted"
    body = {**OLD_BODY, "symbol": "ETH-USDT", "price": "100"}
    response = node.signed("POST", "/v1/orders", body, key=key, secret=secret)
    assert (response.status_code, response.json()["code"]) == (400, 3001)
    assert node.admin("POST", "/v1/admin/instruments/ETH-USDT/resume")["status"] == "trading"
    assert node.signed("POST", "/v1/orders", body, key=key, secret=secret).status_code == 201
