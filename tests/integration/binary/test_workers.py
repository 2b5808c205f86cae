"""`crossbook serve --workers 2`: REST order entry through gateway worker processes (binary
clients of the core), and a worker killed mid-load loses no acknowledged order."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx

from tests.integration.binary.test_binary_gateway import CONFIG, FUNDS
from tests.support.node import NodeProcess


def worker_pids(node: NodeProcess) -> list[int]:
    assert node.process is not None
    children = Path(f"/proc/{node.process.pid}/task/{node.process.pid}/children")
    return [int(pid) for pid in children.read_text().split()]


def test_worker_killed_mid_load_loses_no_acknowledged_order(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "d", CONFIG)
    node.start_env["CROSSBOOK_WORKERS"] = "2"
    node.start()
    try:
        traders = [node.trader(account, FUNDS) for account in (51, 52, 53, 54)]
        acked: list[tuple[int, int]] = []
        failures: list[str] = []
        stop = threading.Event()

        def trade(index: int, key: str, secret: str) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                side = "buy" if n % 2 else "sell"
                price = "50000" if side == "buy" else "50001"
                try:
                    response = node.signed("POST", "/v1/orders", {
                        "symbol": "BTC-USDT", "side": side, "type": "limit",
                        "quantity": "0.001", "price": price,
                        "client_order_id": f"w{index}-{n}",
                    }, key=key, secret=secret)
                except httpx.TransportError as exc:  # the killed worker's connection
                    failures.append(repr(exc))
                    continue
                if response.status_code == 201:
                    acked.append((index, response.json()["order_id"]))
                else:
                    failures.append(response.text)

        threads = [threading.Thread(target=trade, args=(i, k, s)) for i, (k, s) in
                   enumerate(traders)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while len(acked) < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        victim = worker_pids(node)[0]
        os.kill(victim, signal.SIGKILL)
        before = len(acked)
        while len(acked) < before + 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        for thread in threads:
            thread.join()
        assert len(acked) >= before + 100, failures[:5]
        for index, order_id in acked:
            key, secret = traders[index]
            found = node.signed("GET", f"/v1/orders/{order_id}", key=key, secret=secret)
            assert found.status_code == 200, (order_id, found.text)
        assert node.process is not None
        assert node.process.poll() is None
    finally:
        node.close()
