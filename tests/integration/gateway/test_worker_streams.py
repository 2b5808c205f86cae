"""`crossbook serve --workers 2`: WebSocket streams, WebSocket order entry and Binance listen
keys served by gateway worker processes.

The workers share the public `--ws` socket as they share `--http`. Listen keys have one
authority, the core: a key created through one worker is kept alive and closed through the
other, and streams from whichever process a WebSocket connection lands on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.ws.conftest import UNLIMITED, login_message, recv_json, recv_until, ws
from tests.support.node import NodeProcess

FUNDS = {"BTC": "10", "USDT": "1000000"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    node = NodeProcess(tmp_path_factory.mktemp("workers") / "data", UNLIMITED)
    node.start_env["CROSSBOOK_WORKERS"] = "2"
    node.start()
    try:
        yield node
    finally:
        node.close()


def process_of(client: httpx.Client) -> str:
    detail: str = client.get("/ready").json()["components"]["process"]["detail"]
    return detail


def client_on(node: NodeProcess, process: str, attempts: int = 200) -> httpx.Client:
    """A keep-alive connection the kernel handed to `process` (new connections until one is)."""
    for _ in range(attempts):
        client = httpx.Client(base_url=f"http://127.0.0.1:{node.port}", timeout=10,
                              limits=httpx.Limits(max_connections=1))
        if process_of(client) == process:
            return client
        client.close()
        time.sleep(0.01)
    pytest.fail(f"no connection reached {process} in {attempts} attempts")


def test_listen_keys_have_one_authority_across_workers(cluster: NodeProcess) -> None:
    key, _ = cluster.trader(601, FUNDS)
    headers = {"X-MBX-APIKEY": key}
    first, second = client_on(cluster, "gateway worker 0"), client_on(cluster, "gateway worker 1")
    try:
        created = first.post("/api/v3/userDataStream", headers=headers)
        assert created.status_code == 200, created.text
        listen_key = created.json()["listenKey"]
        # the account's live key is returned again, whichever worker is asked
        again = second.post("/api/v3/userDataStream", headers=headers).json()["listenKey"]
        assert again == listen_key
        keepalive = second.put("/api/v3/userDataStream", params={"listenKey": listen_key},
                               headers=headers)
        assert (keepalive.status_code, keepalive.json()) == (200, {})
        closed = second.delete("/api/v3/userDataStream", params={"listenKey": listen_key},
                               headers=headers)
        assert closed.status_code == 200, closed.text
        for client in (first, second):
            gone = client.put("/api/v3/userDataStream", params={"listenKey": listen_key},
                              headers=headers)
            assert (gone.status_code, gone.json()["code"]) == (400, -1125)
    finally:
        first.close()
        second.close()


def test_workers_serve_streams_user_data_and_order_entry(cluster: NodeProcess) -> None:
    maker_key, maker_secret = cluster.trader(602, FUNDS)
    taker_key, taker_secret = cluster.trader(603, FUNDS)
    listen = cluster.http.post("/api/v3/userDataStream", headers={"X-MBX-APIKEY": maker_key})
    listen_key = listen.json()["listenKey"]
    with ws(f"{cluster.ws_url}/ws/btcusdt@trade/btcusdt@depth@100ms") as market, \
            ws(f"{cluster.ws_url}/ws/{listen_key}") as user, \
            ws(f"{cluster.ws_url}/v1/ws") as taker:
        market.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
        assert recv_until(market, lambda m: m.get("id") == 1)["result"] == [
            "btcusdt@trade", "btcusdt@depth@100ms"]
        maker = cluster.signed("POST", "/v1/orders", {
            "symbol": "BTC-USDT", "side": "sell", "type": "limit", "price": "700.00",
            "quantity": "0.020", "client_order_id": "wk-1"}, key=maker_key, secret=maker_secret)
        assert maker.status_code == 201, maker.text
        diffs = [recv_until(market, lambda m: m.get("e") == "depthUpdate")]
        assert diffs[0]["a"] == [["700.00", "0.02000"]]
        taker.send(login_message(taker_key, taker_secret))
        assert recv_json(taker) == {"id": 1, "result": {"account": 603}}
        taker.send(json.dumps({"op": "place", "id": "t1", "order": {
            "symbol": "BTC-USDT", "side": "buy", "type": "limit", "price": "700.00",
            "quantity": "0.010"}}))
        reply = recv_until(taker, lambda m: m.get("id") == "t1")
        assert reply["result"]["status"] == "filled", reply
        # durable before the reply, and visible through any worker's REST views
        found = cluster.signed("GET", f"/v1/orders/{reply['result']['order_id']}",
                               key=taker_key, secret=taker_secret)
        assert found.json()["status"] == "filled"

        trades = []
        while not trades or len(diffs) < 2:
            message = recv_json(market)
            (trades if message.get("e") == "trade" else diffs).append(message)
        assert (trades[0]["p"], trades[0]["q"]) == ("700.00", "0.01000")
        assert diffs[1]["e"] == "depthUpdate"
        assert diffs[1]["a"] == [["700.00", "0.01000"]]
        assert diffs[1]["U"] == diffs[0]["u"] + 1  # gapless from the worker's views too

        reports = []
        while len(reports) < 2:
            message = recv_json(user)
            if message["e"] == "executionReport":
                reports.append(message)
        assert [(r["x"], r["X"], r["c"]) for r in reports] == [
            ("NEW", "NEW", "wk-1"), ("TRADE", "PARTIALLY_FILLED", "wk-1")]
