"""ccxt.pro's `binance` class watching a running node: `watch_order_book` (which subscribes to
`@depth@100ms`, fetches the REST snapshot and fails on any `U`/`u` gap) ends up with the node's
book level by level, and `watch_trades` sees the trades REST reports."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlparse

import ccxt.pro  # type: ignore[import-untyped]

from tests.support.node import NodeProcess

SYMBOL = "BTC/USDT"


def _pro(node: NodeProcess) -> Any:
    exchange = ccxt.pro.binance({
        "enableRateLimit": False,
        "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False,
                    "fetchMargins": False},
    })
    base = f"http://127.0.0.1:{node.port}"
    api = exchange.urls["api"]
    for name, url in list(api.items()):
        if isinstance(url, str):
            api[name] = base + ("/api/v3" if name in ("public", "private")
                                else urlparse(url).path)
    api["ws"]["spot"] = f"{node.ws_url}/ws"
    return exchange


def _order(node: NodeProcess, key: tuple[str, str], side: str, price: str, qty: str) -> None:
    response = node.signed("POST", "/v1/orders", {
        "symbol": "BTC-USDT", "side": side, "type": "limit", "price": price, "quantity": qty,
    }, key=key[0], secret=key[1])
    assert response.status_code < 300, response.text


def _levels(rows: list[list[str]]) -> list[list[float]]:
    return [[float(p), float(q)] for p, q in rows]


def test_watch_order_book_and_trades_follow_the_node(ws_node: NodeProcess) -> None:
    maker = ws_node.trader(701, {"BTC": "100", "USDT": "10000000"})
    taker = ws_node.trader(702, {"BTC": "100", "USDT": "10000000"})
    for i in range(5):
        _order(ws_node, maker, "sell", f"{31_000 + i * 10}.00", "0.5")
        _order(ws_node, maker, "buy", f"{29_000 - i * 10}.00", "0.5")

    async def scenario() -> None:
        exchange = _pro(ws_node)
        try:
            await exchange.load_markets()
            book = await exchange.watch_order_book(SYMBOL)
            assert book["asks"][0] == [31_000, 0.5]
            trades_task = asyncio.ensure_future(exchange.watch_trades(SYMBOL))
            # the orders come only once the node holds the trade subscription (book + trades)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any(  # noqa: ASYNC110
                    c["subscriptions"] >= 2 for c in ws_node.http.get("/clients").json()):
                await asyncio.sleep(0.02)
            for i in range(10):
                _order(ws_node, maker, "sell", f"{30_500 + i}.00", "0.1")
            _order(ws_node, taker, "buy", "31000.00", "0.25")  # takes 30,500, 30,501, 30,502
            await asyncio.wait_for(trades_task, 10)
            deadline = time.monotonic() + 10
            # each message resolves a watch once, and a later watch waits for a newer one: poll
            # ccxt's own trade cache instead
            while len(exchange.trades.get(SYMBOL, [])) < 3 and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            seen: list[Any] = list(exchange.trades[SYMBOL])
            rest = ws_node.http.get("/api/v3/trades", params={"symbol": "BTCUSDT"}).json()
            by_id = {str(t["id"]): t for t in rest}
            assert [t["price"] for t in seen[-3:]] == [30_500, 30_501, 30_502]
            for trade in seen[-3:]:
                assert trade["side"] == "buy"
                assert float(by_id[trade["id"]]["price"]) == trade["price"]
                assert float(by_id[trade["id"]]["qty"]) == trade["amount"]
            expected = ws_node.http.get("/api/v3/depth",
                                        params={"symbol": "BTCUSDT", "limit": 1000}).json()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                book = await asyncio.wait_for(exchange.watch_order_book(SYMBOL), 10)
                if book["nonce"] >= expected["lastUpdateId"]:
                    break
            assert book["nonce"] == expected["lastUpdateId"]
            assert book["asks"][: len(expected["asks"])] == _levels(expected["asks"])
            assert book["bids"][: len(expected["bids"])] == _levels(expected["bids"])
            assert book["asks"][0] == [30_502, 0.05]
        finally:
            await exchange.close()

    asyncio.run(scenario())
