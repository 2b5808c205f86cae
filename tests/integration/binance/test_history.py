"""`allOrders`, `myTrades` and `klines` reach the history database past what memory holds.

A node of its own (the package's node is shared, and a restart makes memory forget): orders
are placed and filled through binance-connector, the projector catches up, the node
restarts (its views then hold open orders only), and the Binance endpoints still answer the
orders and fills from before the restart, now from the database, and the candles from a
`startTime`.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from crossbook.config import DEFAULT_TOML
from tests.integration.binance.conftest import FUNDS, LIMITS, connector
from tests.support.node import NodeProcess

SYMBOL = "BTCUSDT"


def _wait_projected(node: NodeProcess, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        text = node.http.get("/metrics").text
        found = re.search(r"^crossbook_history_lag (\S+)$", text, re.MULTILINE)
        assert found is not None, text
        if float(found.group(1)) == 0:
            return
        assert time.monotonic() < deadline, node.http.get("/ready").text
        time.sleep(0.05)


def test_binance_history_after_restart(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "data", DEFAULT_TOML + LIMITS)
    node.start()
    try:
        base_url = f"http://127.0.0.1:{node.port}"
        maker = connector(base_url, node.trader(7_901, FUNDS))
        taker = connector(base_url, node.trader(7_902, FUNDS))
        started = int(time.time() * 1000) - 1
        minute = started - started % 60_000  # klines: open times from the startTime on
        asks = [
            maker.new_order(symbol=SYMBOL, side="SELL", type="LIMIT", timeInForce="GTC",
                            quantity="0.1", price=f"{70000 + n}")["orderId"]
            for n in range(3)
        ]  # fmt: skip
        for _ in range(2):  # each takes one ask
            bid = taker.new_order(symbol=SYMBOL, side="BUY", type="LIMIT", timeInForce="GTC",
                                  quantity="0.1", price="70005")  # fmt: skip
            assert bid["status"] == "FILLED"
        maker.cancel_order(symbol=SYMBOL, orderId=asks[2])
        _wait_projected(node)

        def read() -> dict[str, Any]:
            return {
                "orders": maker.get_orders(symbol=SYMBOL),
                "trades": maker.my_trades(symbol=SYMBOL),
                "taker trades": taker.my_trades(symbol=SYMBOL),
                "klines": maker.klines(symbol=SYMBOL, interval="1m", startTime=minute),
            }

        before = read()
        assert [o["orderId"] for o in before["orders"]] == asks
        assert [o["status"] for o in before["orders"]] == ["FILLED", "FILLED", "CANCELED"]
        assert len(before["trades"]) == 2
        assert sum(k[8] for k in before["klines"]) == 2

        node.restart()
        after = read()
        for name in ("orders", "trades", "taker trades"):
            assert after[name] == before[name], name
        assert after["klines"] == before["klines"]  # taker-buy split included
        # a lower bound pages from the database, oldest first
        page = maker.get_orders(symbol=SYMBOL, orderId=asks[1], limit=1)
        assert [o["orderId"] for o in page] == [asks[1]]
        first = maker.my_trades(symbol=SYMBOL, fromId=0, limit=1)
        assert first == before["trades"][:1]
        window = maker.get_orders(symbol=SYMBOL, startTime=started,
                                  endTime=int(time.time() * 1000))  # fmt: skip
        assert [o["orderId"] for o in window] == asks
    finally:
        node.close()
