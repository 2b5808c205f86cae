"""The `/api/v3` wire details clients depend on, checked with raw HTTP requests: where
parameters may travel, what the signature covers, error bodies, and keys a spot client
must (not) see."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlencode

import httpx
import pytest

from crossbook.gateway.binance.params import sign_payload
from tests.integration.binance.conftest import ORDERS_PER_10S, Trader
from tests.support.node import NodeProcess

SYMBOL = "BTCUSDT"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Signer:
    """Signs like the three clients do: over the raw query plus the raw body."""

    def __init__(self, node: NodeProcess, trader: Trader) -> None:
        self.http, (self.key, self.secret) = node.http, trader

    def send(self, method: str, path: str, query: str = "", body: str = "",
             headers: dict[str, str] | None = None, where: str = "auto") -> httpx.Response:
        signature = sign_payload(self.secret, (query + body).encode())
        pair = f"signature={signature}"
        if where == "body" or (where == "auto" and body):
            body = f"{body}&{pair}" if body else pair
        else:
            query = f"{query}&{pair}" if query else pair
        url = f"/api/v3/{path}" + (f"?{query}" if query else "")
        return self.http.request(method, url, content=body.encode(), headers={
            "X-MBX-APIKEY": self.key, **(headers or {})})


@pytest.fixture
def signer(node: NodeProcess, new_trader: Callable[..., Trader]) -> Signer:
    return Signer(node, new_trader())


def limit_order(price: str, side: str = "SELL", **extra: str) -> dict[str, str]:
    return {"symbol": SYMBOL, "side": side, "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "0.01", "price": price, **extra, "timestamp": str(now_ms())}


def test_parameters_travel_in_query_or_form_body(signer: Signer) -> None:
    # ccxt: POST with a form body; python-binance: sorted keys, DELETE with a form body
    placed = signer.send("POST", "order", body=urlencode(limit_order("90000.5")), headers=FORM)
    assert placed.status_code == 200, placed.text
    order_id = placed.json()["orderId"]
    query = signer.send("GET", "order", urlencode(
        {"symbol": SYMBOL, "orderId": order_id, "timestamp": now_ms()}))
    assert query.json()["price"] == "90000.50000000"
    # the Binance documentation's split: some parameters in the query, the rest in the body
    split = limit_order("90001")
    head = urlencode({k: split.pop(k) for k in ("symbol", "side", "type")})
    both = signer.send("POST", "order", head, urlencode(split), where="body")
    assert both.status_code == 200, both.text
    # binance-connector: everything in the query, a JSON content type and an empty body;
    # it leaves '@' unescaped, and the signature covers the raw text as sent
    raw = urlencode(limit_order("90002", newClientOrderId="cn_1")) + "&note=a@b"
    cn = signer.send("POST", "order", raw, headers={"Content-Type": "application/json"})
    assert cn.status_code == 200, cn.text
    canceled = signer.send("DELETE", "order", body=urlencode(sorted(
        {"symbol": SYMBOL, "orderId": str(order_id), "timestamp": str(now_ms())}.items())),
        headers={"Content-Type": "application/json"})
    assert canceled.json()["status"] == "CANCELED"
    everything = signer.send("DELETE", "openOrders", body=urlencode(
        {"symbol": SYMBOL, "timestamp": now_ms()}), headers=FORM)
    assert sorted(o["price"] for o in everything.json()) == ["90001.00000000", "90002.00000000"]


def test_signature_and_timestamp_checks(node: NodeProcess, signer: Signer) -> None:
    def error(response: httpx.Response) -> tuple[int, int]:
        body = response.json()
        assert set(body) == {"code", "msg"}
        return response.status_code, body["code"]

    query = urlencode({"timestamp": now_ms()})
    assert signer.send("GET", "account", query).status_code == 200
    good = signer.send("GET", "account", query)
    tampered = node.http.get(str(good.request.url).replace("timestamp=", "recvWindow=6000&"
                                                           "timestamp="),
                             headers={"X-MBX-APIKEY": signer.key})
    assert error(tampered) == (400, -1022)
    assert error(signer.send("GET", "account", urlencode({"timestamp": now_ms() - 6_000}))) \
        == (400, -1021)
    assert error(signer.send("GET", "account", urlencode({"timestamp": now_ms() + 5_000}))) \
        == (400, -1021)
    wide = urlencode({"timestamp": now_ms() - 6_000, "recvWindow": 10_000})
    assert signer.send("GET", "account", wide).status_code == 200
    assert error(signer.send("GET", "account", "")) == (400, -1102)
    assert error(node.http.get("/api/v3/account", params={"timestamp": now_ms()})) == (401, -2014)
    unsigned = node.http.get("/api/v3/account", params={"timestamp": now_ms()},
                             headers={"X-MBX-APIKEY": signer.key})
    assert error(unsigned) == (400, -1102)
    # public endpoints ignore the key header, even an unknown key
    public = node.http.get("/api/v3/depth", params={"symbol": SYMBOL},
                           headers={"X-MBX-APIKEY": "whatever"})
    assert public.status_code == 200
    assert error(node.http.get("/api/v3/nothing-here"))[0] == 404


def test_shapes_spot_clients_rely_on(node: NodeProcess, signer: Signer) -> None:
    info = node.http.get("/api/v3/exchangeInfo").json()
    futures_keys = {"contractType", "deliveryDate", "expiryDate", "underlying", "marginAsset",
                    "tradability"}
    for symbol in info["symbols"]:
        assert not futures_keys & set(symbol)
        assert "TRD_GRP_003" not in symbol["permissions"]
        assert {f["filterType"] for f in symbol["filters"]} >= {
            "PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "NOTIONAL"}
    assert node.http.get("/api/v3/exchangeInfo", params={"symbol": "NOPE"}).json()["code"] \
        == -1121

    placed = signer.send("POST", "order", body=urlencode(limit_order("95000")), headers=FORM)
    order = signer.send("GET", "openOrders", urlencode({"timestamp": now_ms()})).json()[0]
    assert order["orderId"] == placed.json()["orderId"]
    assert not {"positionSide", "cumQuote"} & set(order)
    assert isinstance(order["time"], int)
    assert isinstance(order["price"], str)
    depth = node.http.get("/api/v3/depth", params={"symbol": SYMBOL, "limit": 1000}).json()
    native = node.http.get("/v1/depth", params={"symbol": "BTC-USDT"}).json()
    assert depth["lastUpdateId"] == native["last_update_id"] > 0
    for name in ("ticker/24hr", "ticker/price", "ticker/bookTicker"):
        every = node.http.get(f"/api/v3/{name}").json()
        assert {t["symbol"] for t in every} == {"BTCUSDT", "ETHUSDT"}
        assert all("time" not in t for t in every)
    signer.send("DELETE", "openOrders", urlencode({"symbol": SYMBOL, "timestamp": now_ms()}))


def test_order_types(signer: Signer) -> None:
    def post(**params: str) -> httpx.Response:
        body = {"symbol": SYMBOL, **params, "timestamp": str(now_ms())}
        return signer.send("POST", "order", body=urlencode(body), headers=FORM)

    resting = post(side="SELL", type="LIMIT_MAKER", quantity="0.01", price="99000")
    assert (resting.json()["type"], resting.json()["status"]) == ("LIMIT_MAKER", "NEW")
    crossing = post(side="BUY", type="LIMIT_MAKER", quantity="0.01", price="99000")
    assert crossing.json() == {"code": -2010, "msg": "Order would immediately match and take."}
    stop = post(side="BUY", type="STOP_LOSS_LIMIT", timeInForce="GTC", quantity="0.01",
                price="120000", stopPrice="119000")
    assert stop.status_code == 200, stop.text
    assert (stop.json()["type"], stop.json()["stopPrice"]) == ("STOP_LOSS_LIMIT",
                                                               "119000.00000000")
    take = post(side="SELL", type="TAKE_PROFIT", quantity="0.01", stopPrice="150000")
    assert take.json()["status"] == "NEW"
    sell_by_quote = post(side="SELL", type="MARKET", quoteOrderQty="100")
    assert sell_by_quote.json()["code"] == -1128
    assert post(side="BUY", type="MARKET").json()["code"] == -1102
    assert post(side="BUY", type="OCO", quantity="1").json()["code"] == -1116
    assert post(side="UP", type="MARKET", quantity="1").json()["code"] == -1117
    assert post(side="BUY", type="LIMIT", timeInForce="DAY", quantity="1",
                price="1").json()["code"] == -1115
    assert post(side="BUY", type="LIMIT", timeInForce="GTC", quantity="1e-3",
                price="1").json()["code"] == -1100
    opened = signer.send("GET", "openOrders", urlencode({"symbol": SYMBOL,
                                                         "timestamp": now_ms()})).json()
    assert sorted(o["type"] for o in opened) == ["LIMIT_MAKER", "STOP_LOSS_LIMIT",
                                                 "TAKE_PROFIT"]
    assert {o["isWorking"] for o in opened if o["type"] != "LIMIT_MAKER"} == {False}
    signer.send("DELETE", "openOrders", urlencode({"symbol": SYMBOL, "timestamp": now_ms()}))


def test_listen_keys(signer: Signer, node: NodeProcess) -> None:
    headers = {"X-MBX-APIKEY": signer.key}
    first = node.http.post("/api/v3/userDataStream", headers=headers).json()["listenKey"]
    again = node.http.post("/api/v3/userDataStream", headers=headers).json()["listenKey"]
    assert first == again
    assert node.http.put("/api/v3/userDataStream", params={"listenKey": first},
                         headers=headers).json() == {}
    assert node.http.delete("/api/v3/userDataStream", params={"listenKey": first},
                            headers=headers).json() == {}
    gone = node.http.put("/api/v3/userDataStream", params={"listenKey": first}, headers=headers)
    assert gone.json()["code"] == -1125
    assert node.http.post("/api/v3/userDataStream").json()["code"] == -2014


def test_rate_limits_answer_429_with_binance_code(signer: Signer) -> None:
    # the package's node allows 60 orders per key per 10 s window (aligned to the epoch):
    # 130 orders sent within two windows overflow one of them
    answers = []
    for step in range(130):
        price = f"{91_000 + step}"
        answer = signer.send("POST", "order", body=urlencode(
            limit_order(price, newOrderRespType="ACK")), headers=FORM)
        answers.append(answer.status_code)
        if answer.status_code != 200:
            break
    assert answers[-1] == 429
    assert answers.count(200) >= ORDERS_PER_10S
    assert answer.json()["code"] == -1003
    assert int(answer.headers["retry-after"]) >= 1
    signer.send("DELETE", "openOrders", urlencode({"symbol": SYMBOL, "timestamp": now_ms()}))
