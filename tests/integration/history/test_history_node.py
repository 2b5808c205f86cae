"""History wired into a node started as a user would (`crossbook serve`, SQLite by default).

Orders are placed and filled over HTTP; once the projector has caught up, the node restarts
(its views then hold open orders only) and the history endpoints must answer exactly what
they answered from memory, now from the database. Then `crossbook history rebuild DIR`
regenerates the database from the journal with identical tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from crossbook.config import DEFAULT_TOML
from crossbook.domain.enums import OrderStatus
from crossbook.history import DEFAULT_FILE
from crossbook.history.sqlite import SqliteStore
from tests.support.history_checks import dump
from tests.support.node import NodeProcess

LIMITS = """
[limits]
key_weight_per_minute = 100000
key_orders_per_10s = 1000
key_orders_per_day = 100000
ip_weight_per_minute = 1000000
"""


def _lag(node: NodeProcess) -> int:
    text = node.http.get("/metrics").text
    found = re.search(r"^crossbook_history_lag (\S+)$", text, re.MULTILINE)
    assert found is not None, text
    return int(float(found.group(1)))


def _wait_projected(node: NodeProcess, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while _lag(node) > 0:
        assert time.monotonic() < deadline, node.http.get("/ready").text
        time.sleep(0.05)


def _tables(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    async def read() -> dict[str, list[tuple[Any, ...]]]:
        store = SqliteStore(path)
        await store.open()
        try:
            return await dump(store)
        finally:
            await store.close()

    return asyncio.run(read())


def _rebuild(data_dir: Path, target: Path) -> str:
    script = Path(sys.executable).with_name("crossbook")
    command = [str(script)] if script.exists() else [
        sys.executable, "-c", "import sys; from crossbook.cli import main; sys.exit(main())"]
    done = subprocess.run(
        [*command, "history", "rebuild", str(data_dir), "--history", str(target)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _wait_stored(path: Path, timeout: float = 20.0) -> None:
    """Until the database holds the scenario's end state (gateway workers have no lag gauge:
    the projector runs in the core)."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.closing(sqlite3.connect(path)) as db:
            fills = db.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
            canceled = db.execute("SELECT COUNT(*) FROM orders WHERE status = ?",
                                  (int(OrderStatus.CANCELED),)).fetchone()[0]  # fmt: skip
        if fills == 8 and canceled == 1:
            return
        assert time.monotonic() < deadline, (fills, canceled)
        time.sleep(0.05)


@pytest.mark.parametrize("workers", [0, 2])
def test_history_served_after_restart_and_rebuilt(tmp_path: Path, workers: int) -> None:
    """With gateway workers the same reads are served by the workers, from the database the
    core's projector writes."""
    data_dir = tmp_path / "data"
    node = NodeProcess(data_dir, DEFAULT_TOML + LIMITS)
    if workers:
        node.start_env["CROSSBOOK_WORKERS"] = str(workers)
    node.start()
    try:
        maker = node.trader(11, {"BTC": "10"})
        taker = node.trader(12, {"USDT": "1000000"})
        maker_ids = []
        for number in range(6):
            body = {"symbol": "BTC-USDT", "type": "limit", "side": "sell", "quantity": "0.1",
                    "price": f"{60000 + number}", "client_order_id": f"ask-{number}"}
            placed = node.signed("POST", "/v1/orders", body, key=maker[0], secret=maker[1])
            assert placed.status_code == 201, placed.text
            maker_ids.append(placed.json()["order_id"])
        for number in range(4):  # each takes one ask, the last one partly
            body = {"symbol": "BTC-USDT", "type": "limit", "side": "buy",
                    "quantity": "0.1" if number < 3 else "0.05", "price": "60010",
                    "client_order_id": f"bid-{number}"}  # fmt: skip
            placed = node.signed("POST", "/v1/orders", body, key=taker[0], secret=taker[1])
            assert placed.status_code == 201, placed.text
            assert placed.json()["status"] == "filled"
        canceled = node.signed("DELETE", f"/v1/orders/{maker_ids[5]}", key=maker[0],
                               secret=maker[1])  # fmt: skip
        assert canceled.status_code == 200, canceled.text
        if workers:
            _wait_stored(data_dir / DEFAULT_FILE)
        else:
            ready = node.http.get("/ready").json()
            assert ready["ready"] is True
            assert "history" in ready["components"]
            _wait_projected(node)
            assert node.http.get("/ready").json()["components"]["history"]["ok"] is True

        def views() -> dict[str, Any]:
            out: dict[str, Any] = {}
            for name, (key, secret) in (("maker", maker), ("taker", taker)):
                for path in ("/v1/orders/history", "/v1/fills"):
                    response = node.signed("GET", path, key=key, secret=secret)
                    assert response.status_code == 200, response.text
                    out[f"{name} {path}"] = response.json()
            candles = node.http.get("/v1/candles", params={"symbol": "BTC-USDT",
                                                           "interval": "1m"})
            out["candles"] = candles.json()
            return out

        before = views()
        assert len(before["maker /v1/orders/history"]) == 6
        assert len(before["maker /v1/fills"]) == 4
        assert len(before["taker /v1/fills"]) == 4
        assert sum(c["trade_count"] for c in before["candles"]) == 4

        node.restart()
        after = views()
        for name in before:
            assert after[name] == before[name], name
        # paging by id reaches the database as well, oldest first
        page = node.signed("GET", "/v1/orders/history?from_id=0&limit=2", key=maker[0],
                           secret=maker[1]).json()  # fmt: skip
        assert [o["order_id"] for o in page] == maker_ids[:2]
        fills = node.signed("GET", "/v1/fills?from_id=0&limit=3", key=taker[0],
                            secret=taker[1]).json()  # fmt: skip
        assert [f["client_order_id"] for f in fills] == ["bid-0", "bid-1", "bid-2"]
    finally:
        node.close()

    live = data_dir / DEFAULT_FILE
    rebuilt = tmp_path / "rebuilt.sqlite3"
    assert "events" in _rebuild(data_dir, rebuilt)
    expected = _tables(live)
    assert expected["trades"]
    assert expected["orders"]
    assert _tables(rebuilt) == expected
    _rebuild(data_dir, live)  # in place, over the live database: the same tables again
    assert _tables(live) == expected
