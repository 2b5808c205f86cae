"""binance-connector (`binance.spot.Spot`) trading against a running node through `/api/v3`.

The connector sends every parameter in the query string (POST and DELETE too) with
`Content-Type: application/json` and an empty body, and its signature covers that query.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from binance.error import ClientError

from tests.integration.binance.conftest import Trader, connector

SYMBOL = "ETHUSDT"


def test_public_endpoints(base_url: str, new_trader: Callable[..., Trader]) -> None:
    client = connector(base_url)
    assert client.ping() == {}
    assert abs(client.time()["serverTime"] - time.time() * 1000) < 5_000
    info = client.exchange_info(symbol=SYMBOL)
    (eth,) = info["symbols"]
    assert (eth["symbol"], eth["baseAsset"], eth["quoteAsset"]) == ("ETHUSDT", "ETH", "USDT")
    filters = {f["filterType"]: f for f in eth["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00010000"
    assert filters["NOTIONAL"]["minNotional"] == "1.00000000"
    assert {"LIMIT", "MARKET"} <= set(eth["orderTypes"])
    both = client.exchange_info(symbols=["BTCUSDT", "ETHUSDT"])
    assert [s["symbol"] for s in both["symbols"]] == ["BTCUSDT", "ETHUSDT"]

    maker = connector(base_url, new_trader())
    taker = connector(base_url, new_trader())
    maker.new_order(symbol=SYMBOL, side="SELL", type="LIMIT", timeInForce="GTC",
                    quantity="1.5", price="3000.5")
    before = client.depth(SYMBOL, limit=5)
    taker.new_order(symbol=SYMBOL, side="BUY", type="MARKET", quantity="0.5")
    depth = client.depth(SYMBOL, limit=5)
    assert depth["lastUpdateId"] == before["lastUpdateId"] + 1
    assert ["3000.50000000", "1.00000000"] in depth["asks"]
    trade = client.trades(SYMBOL, limit=1)[-1]
    assert (trade["price"], trade["qty"], trade["isBuyerMaker"]) == (
        "3000.50000000", "0.50000000", False)
    agg = client.agg_trades(SYMBOL, limit=1)[-1]
    assert (agg["p"], agg["q"], agg["f"], agg["l"]) == (
        "3000.50000000", "0.50000000", trade["id"], trade["id"])
    kline = client.klines(SYMBOL, "1m", limit=1)[-1]
    assert kline[4] == "3000.50000000"
    assert kline[6] - kline[0] == 59_999
    ticker = client.ticker_24hr(SYMBOL)
    assert ticker["lastPrice"] == "3000.50000000"
    assert "time" not in ticker
    assert client.ticker_price(SYMBOL) == {"symbol": SYMBOL, "price": "3000.50000000"}
    book = client.book_ticker(SYMBOL)
    assert (book["askPrice"], book["askQty"]) == ("3000.50000000", "1.00000000")
    assert client.avg_price(SYMBOL)["price"] == "3000.50000000"
    maker.cancel_open_orders(SYMBOL)
    with pytest.raises(ClientError) as bad:
        client.klines(SYMBOL, "7m")
    assert bad.value.error_code == -1120


def test_orders_and_account(base_url: str, new_trader: Callable[..., Trader]) -> None:
    maker = connector(base_url, new_trader())
    taker = connector(base_url, new_trader())
    ack = maker.new_order(symbol=SYMBOL, side="SELL", type="LIMIT", timeInForce="GTC",
                          quantity="2", price="3100", newClientOrderId="my-order.1:a/b_c",
                          newOrderRespType="ACK")
    assert set(ack) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
    assert ack["clientOrderId"] == "my-order.1:a/b_c"
    assert maker.new_order_test(symbol=SYMBOL, side="BUY", type="LIMIT", timeInForce="GTC",
                                quantity="1", price="3000") == {}
    by_client_id = maker.get_order(SYMBOL, origClientOrderId="my-order.1:a/b_c")
    assert by_client_id["orderId"] == ack["orderId"]
    account = maker.account()
    balances = {b["asset"]: b for b in account["balances"]}
    assert (balances["ETH"]["free"], balances["ETH"]["locked"]) == ("98.00000000", "2.00000000")

    result = taker.new_order(symbol=SYMBOL, side="BUY", type="MARKET", quoteOrderQty="3100",
                             newOrderRespType="RESULT")
    assert (result["status"], result["executedQty"], result["cummulativeQuoteQty"]) == (
        "FILLED", "1.00000000", "3100.00000000")
    assert "fills" not in result
    full = taker.new_order(symbol=SYMBOL, side="BUY", type="LIMIT", timeInForce="IOC",
                           quantity="0.25", price="3100")
    assert full["status"] == "FILLED"
    assert [(f["price"], f["qty"]) for f in full["fills"]] == [("3100.00000000", "0.25000000")]

    order = maker.get_order(SYMBOL, orderId=ack["orderId"])
    assert (order["status"], order["executedQty"], order["cummulativeQuoteQty"]) == (
        "PARTIALLY_FILLED", "1.25000000", "3875.00000000")
    assert [o["orderId"] for o in maker.get_open_orders(SYMBOL)] == [ack["orderId"]]
    trades = maker.my_trades(SYMBOL)
    assert [(t["qty"], t["isBuyer"], t["isMaker"]) for t in trades] == [
        ("1.00000000", False, True), ("0.25000000", False, True)]
    assert trades[1]["id"] == full["fills"][0]["tradeId"]

    canceled = maker.cancel_order(SYMBOL, orderId=ack["orderId"])
    assert (canceled["status"], canceled["origClientOrderId"]) == ("CANCELED", "my-order.1:a/b_c")
    with pytest.raises(ClientError) as again:
        maker.cancel_order(SYMBOL, orderId=ack["orderId"])
    assert (again.value.error_code, again.value.error_message) == (-2011, "Unknown order sent.")
    history = maker.get_orders(SYMBOL)
    assert [(o["orderId"], o["status"]) for o in history] == [(ack["orderId"], "CANCELED")]
    assert maker.get_open_orders() == []

    listen_key = maker.new_listen_key()["listenKey"]
    assert maker.renew_listen_key(listen_key) == {}
    assert maker.close_listen_key(listen_key) == {}
    with pytest.raises(ClientError) as gone:
        maker.renew_listen_key(listen_key)
    assert gone.value.error_code == -1125


def test_errors(base_url: str, new_trader: Callable[..., Trader]) -> None:
    trader = new_trader({"USDT": "10"})
    client = connector(base_url, trader)

    def code(call: Callable[[], object]) -> tuple[int, str]:
        with pytest.raises(ClientError) as caught:
            call()
        return caught.value.error_code, caught.value.error_message

    limit = {"side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    assert code(lambda: client.new_order(symbol=SYMBOL, quantity="1", price="3000", **limit)) \
        == (-2010, "Account has insufficient balance for requested action.")
    assert code(lambda: client.new_order(
        symbol=SYMBOL, quantity="0.00001", price="3000", **limit)) == (
        -1013, "Filter failure: LOT_SIZE")
    assert code(lambda: client.new_order(
        symbol=SYMBOL, quantity="0.001", price="3000.001", **limit)) == (
        -1013, "Filter failure: PRICE_FILTER")
    assert code(lambda: client.new_order(symbol="NOPEUSDT", quantity="1", price="1", **limit)) \
        == (-1121, "Invalid symbol.")
    assert code(lambda: client.new_order(symbol=SYMBOL, side="BUY", type="LIMIT",
                                         quantity="1", price="1"))[0] == -1102
    assert code(lambda: client.get_order(SYMBOL, orderId=424242)) == (
        -2013, "Order does not exist.")
    assert code(lambda: client.account(recvWindow=70_000))[0] == -1131
    forged = connector(base_url, (trader[0], "wrong-secret"))
    assert code(forged.account)[0] == -1022
    assert code(connector(base_url, ("unknown-key", "x")).account)[0] == -2015
    assert code(lambda: client.depth("NOPEUSDT"))[0] == -1121
