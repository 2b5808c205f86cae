"""WebSocket order entry on one connection with pipelining (`/v1/ws`), fsync by default.

Workload: one signed-in connection keeps `--window` place requests in flight (limit orders
alternating buy and sell at non-crossing prices, so every order rests: the engine's cheapest
path is not the point, the gateway and the group commit are). Latency is per request from
send to its reply (the reply leaves after the command is durable). Closed loop: the window
bounds in-flight requests, so latency under overload is not hidden behind a slower
send rate (the rate is the result). Seedless: the order stream is fixed. The node's CPU
per order (user + system, all its threads, over the run) is the figure to compare on a
shared machine, where the rate follows the load. Each run also records the node's durable
batches (one group commit each) and reply writes (`/stats`: a socket read's requests go in
together, so both are far fewer than the orders) and the load average.

    .venv/bin/python bench/ws_orders.py --orders 100000 --window 2000 --durability fsync
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Callable
from typing import Any

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from ws_common import cpu_s, fund, login, percentile, save, start_node


class Trader(WSListener):
    def __init__(self, total: int, window: int) -> None:
        self.total, self.window = total, window
        self.sent = self.done = self.errors = 0
        self.started: dict[int, int] = {}
        self.latencies: list[float] = []
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: WSTransport | None = None

    def send_more(self) -> None:
        assert self.transport is not None
        while self.sent < self.total and self.sent - self.done < self.window:
            i = self.sent
            side, price = ("buy", 1000 + i % 500) if i % 2 else ("sell", 90000 + i % 500)
            self.started[i] = time.perf_counter_ns()
            self.transport.send(WSMsgType.TEXT, b'{"op":"place","id":%d,"order":{"symbol":'
                                b'"BTC-USDT","side":"%s","type":"limit","price":"%d.00",'
                                b'"quantity":"0.001"}}' % (i, side.encode(), price))
            self.sent += 1

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        reply: Any = json.loads(frame.get_payload_as_bytes())
        request = reply.get("id")
        if not isinstance(request, int) or request not in self.started:
            return
        self.latencies.append((time.perf_counter_ns() - self.started.pop(request)) / 1e6)
        if "error" in reply and not self.errors:
            print("first error:", reply)
        self.errors += "error" in reply
        self.done += 1
        if self.done == self.total:
            self.finished.set_result(None)
        else:
            self.send_more()


async def run(args: argparse.Namespace, url: str, key: str, secret: str,
              node_pid: int, stats: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    logged = loop.create_future()

    class Login(Trader):
        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if not logged.done():
                logged.set_result(None)
                return
            super().on_ws_frame(transport, frame)

    transport, listener = await ws_connect(lambda: Login(args.orders, args.window), url)
    assert isinstance(listener, Login)
    listener.transport = transport
    transport.send(WSMsgType.TEXT, login(key, secret))
    await logged
    stats0 = await loop.run_in_executor(None, stats)
    started, cpu0 = time.perf_counter(), cpu_s(node_pid)
    listener.send_more()
    await listener.finished
    elapsed = time.perf_counter() - started
    node_cpu = cpu_s(node_pid) - cpu0
    stats1 = await loop.run_in_executor(None, stats)
    transport.disconnect()
    lat = listener.latencies
    return {"orders": args.orders, "window": args.window, "errors": listener.errors,
            "elapsed_s": round(elapsed, 3), "orders_per_s": round(args.orders / elapsed, 1),
            "p50_ms": round(percentile(lat, 0.5), 3), "p99_ms": round(percentile(lat, 0.99), 3),
            "max_ms": round(max(lat), 3),
            "node_cpu_us_per_order": round(node_cpu * 1e6 / args.orders, 1),
            # durable batches (one group commit each) and reply writes over the run
            "batches": stats1["batches"] - stats0["batches"],
            "reply_writes": stats1["writes"] - stats0["writes"],
            "load_average": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--durability", default="fsync", choices=("fsync", "os", "none"))
    args = parser.parse_args()
    node = start_node(args.durability)
    try:
        key, secret = fund(node, 501)
        runs = []
        for _ in range(args.runs):
            assert node.process is not None
            runs.append(asyncio.run(run(args, f"{node.ws_url}/v1/ws", key, secret,
                                        node.process.pid, lambda: node.http.get("/stats").json())))
            print(runs[-1], flush=True)
    finally:
        node.close()
    rates = sorted(r["orders_per_s"] for r in runs)
    cpus = sorted(r["node_cpu_us_per_order"] for r in runs)
    result = {"benchmark": "ws_orders", "durability": args.durability, "runs": runs,
              "median_orders_per_s": rates[len(rates) // 2],
              "median_node_cpu_us_per_order": cpus[len(cpus) // 2]}
    print(json.dumps(result["median_orders_per_s"]), "orders/s median ->",
          save("ws-orders", result))


if __name__ == "__main__":
    main()
