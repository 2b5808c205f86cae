"""ccxt's `binance` class (sync) trading against a running node through `/api/v3`."""

from __future__ import annotations

import time
from collections.abc import Callable

import ccxt
import pytest

from tests.integration.binance.conftest import Trader, ccxt_binance

SYMBOL = "BTC/USDT"


def test_markets_and_public_data(base_url: str, new_trader: Callable[..., Trader]) -> None:
    maker, taker = ccxt_binance(base_url, new_trader()), ccxt_binance(base_url, new_trader())
    markets = maker.load_markets()
    assert {"BTC/USDT", "ETH/USDT"} <= set(markets)
    market = markets[SYMBOL]
    assert market["id"] == "BTCUSDT"
    assert market["spot"]
    assert market["active"]
    assert market["type"] == "spot"
    assert market["precision"]["price"] == 0.01
    assert market["precision"]["amount"] == 0.00001
    assert market["limits"]["cost"]["min"] == 1
    assert abs(maker.fetch_time() - time.time() * 1000) < 5_000

    maker.create_order(SYMBOL, "limit", "sell", 0.2, 61_000)
    maker.create_order(SYMBOL, "limit", "buy", 0.3, 59_000)
    taker.load_markets()
    bought = taker.create_order(SYMBOL, "market", "buy", 0.05)
    assert bought["status"] == "closed"
    assert bought["filled"] == 0.05
    assert bought["average"] == 61_000

    book = taker.fetch_order_book(SYMBOL)
    assert book["nonce"] > 0
    assert [61_000, 0.15] in book["asks"]
    assert [59_000, 0.3] in book["bids"]
    ticker = taker.fetch_ticker(SYMBOL)
    assert ticker["symbol"] == SYMBOL
    assert ticker["last"] == 61_000
    assert ticker["bid"] is not None
    assert ticker["ask"] is not None
    trades = taker.fetch_trades(SYMBOL)
    assert trades[-1]["price"] == 61_000
    assert trades[-1]["side"] == "buy"
    candles = taker.fetch_ohlcv(SYMBOL, "1m")
    assert candles[-1][4] == 61_000
    assert candles[-1][5] > 0
    canceled = maker.cancel_all_orders(SYMBOL)
    assert sorted(o["price"] for o in canceled) == [59_000, 61_000]
    assert maker.fetch_open_orders(SYMBOL) == []


def test_orders_lifecycle(base_url: str, new_trader: Callable[..., Trader]) -> None:
    maker, taker = ccxt_binance(base_url, new_trader()), ccxt_binance(base_url, new_trader())
    maker.load_markets()
    taker.load_markets()
    resting = maker.create_order(SYMBOL, "limit", "sell", 0.1, 70_000)
    assert resting["status"] == "open"
    assert resting["clientOrderId"]
    fetched = maker.fetch_order(resting["id"], SYMBOL)
    assert (fetched["status"], fetched["amount"], fetched["price"]) == ("open", 0.1, 70_000)
    assert [o["id"] for o in maker.fetch_open_orders(SYMBOL)] == [resting["id"]]
    assert [o["id"] for o in maker.fetch_open_orders()] == [resting["id"]]

    balance = maker.fetch_balance()
    assert balance["BTC"]["used"] == 0.1
    assert balance["BTC"]["free"] == 99.9

    # a market buy sized in quote (cost): ccxt sends quoteOrderQty
    spent = taker.create_market_buy_order_with_cost(SYMBOL, 3_500)
    assert spent["status"] == "closed"
    assert spent["cost"] == 3_500
    assert spent["filled"] == 0.05
    partly = maker.fetch_order(resting["id"], SYMBOL)
    assert (partly["status"], partly["filled"], partly["remaining"]) == ("open", 0.05, 0.05)

    mine = maker.fetch_my_trades(SYMBOL)
    assert [(t["side"], t["amount"], t["price"], t["takerOrMaker"]) for t in mine] == [
        ("sell", 0.05, 70_000, "maker")]
    theirs = taker.fetch_my_trades(SYMBOL)
    assert theirs[0]["id"] == mine[0]["id"]
    assert theirs[0]["order"] == spent["id"]

    canceled = maker.cancel_order(resting["id"], SYMBOL)
    assert canceled["status"] == "canceled"
    assert maker.fetch_open_orders(SYMBOL) == []
    closed = maker.fetch_order(resting["id"], SYMBOL)
    assert (closed["status"], closed["filled"]) == ("canceled", 0.05)
    history = maker.fetch_orders(SYMBOL)
    assert [o["id"] for o in history] == [resting["id"]]
    assert maker.fetch_balance()["BTC"]["total"] == 99.95


def test_errors_map_to_ccxt_exceptions(base_url: str, new_trader: Callable[..., Trader]) -> None:
    trader = new_trader({"USDT": "100"})
    client = ccxt_binance(base_url, trader)
    client.load_markets()
    with pytest.raises(ccxt.InsufficientFunds):
        client.create_order(SYMBOL, "limit", "buy", 1, 50_000)
    with pytest.raises(ccxt.OrderNotFound):
        client.fetch_order("987654321", SYMBOL)
    with pytest.raises(ccxt.OrderNotFound):
        client.cancel_order("987654321", SYMBOL)
    with pytest.raises(ccxt.BadRequest, match="NOTIONAL"):  # below the 1 USDT minimum
        client.create_order(SYMBOL, "limit", "buy", 0.00001, 100)
    with pytest.raises(ccxt.BadSymbol):
        client.public_get_depth({"symbol": "NOPEUSDT"})

    forged = ccxt_binance(base_url, (trader[0], "not-the-secret"))
    forged.markets, forged.markets_by_id, forged.symbols = (
        client.markets, client.markets_by_id, client.symbols)
    with pytest.raises(ccxt.AuthenticationError):
        forged.fetch_balance()
    unknown = ccxt_binance(base_url, ("no-such-key", "secret"))
    with pytest.raises(ccxt.AuthenticationError):
        unknown.fetch_balance()
    late = ccxt_binance(base_url, trader)
    late.options["timeDifference"] = 120_000  # the client's clock runs two minutes behind
    with pytest.raises(ccxt.InvalidNonce):
        late.fetch_balance()
