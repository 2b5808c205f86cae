"""Shared parts of the WebSocket benchmarks: a node in a subprocess, signing, results.

`start_node(durability, workers)` runs `crossbook serve` on free ports with a known admin key
and no per-key order limits (and `workers` gateway processes); `fund(node, account)` makes a
funded trader key; `cpu_s(pid)` reads a process's CPU time, `worker_pids(pid)` finds a node's
gateway workers; `save(name, result)` writes `bench/results/<name>-<UTC stamp>.json` with the
machine description.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.node import NodeProcess

from crossbook.config import DEFAULT_TOML
from crossbook.gateway.auth import sign

UNLIMITED = DEFAULT_TOML + (
    "\n[limits]\nkey_orders_per_10s = 0\nkey_orders_per_day = 0\nkey_weight_per_minute = 0\n"
)


def start_node(durability: str = "fsync", workers: int = 0) -> NodeProcess:
    data = Path(tempfile.mkdtemp(prefix="cb-wsbench-")) / "data"
    node = NodeProcess(data, UNLIMITED)
    node.start_env["CROSSBOOK_DURABILITY"] = durability
    if workers:
        node.start_env["CROSSBOOK_WORKERS"] = str(workers)
    node.start()
    return node


def fund(node: NodeProcess, account: int) -> tuple[str, str]:
    return node.trader(account, {"BTC": "1000000", "USDT": "1000000000"})


def login(key: str, secret: str) -> bytes:
    ts = time.time_ns() // 1_000_000
    return json.dumps({"op": "login", "id": 0, "key": key, "timestamp": ts,
                       "signature": sign(secret, ts, "GET", "/v1/ws", b"")}).encode()


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "load_average": os.getloadavg()}


def save(name: str, result: dict[str, Any]) -> Path:
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"{name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps({"machine": machine(), **result}, indent=2))
    return path


def cpu_s(pid: int) -> float:
    """User plus system CPU seconds of process `pid` so far (Linux `/proc`)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_pids(pid: int) -> list[int]:
    """The gateway worker processes (`crossbook.worker`) among process `pid`'s children."""
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            children = [int(c) for c in f.read().split()]
        for child in children:
            try:
                with open(f"/proc/{child}/cmdline", "rb") as f:
                    if b"crossbook.worker" in f.read():
                        found.append(child)
            except FileNotFoundError:
                pass
    return found


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]
