"""Around a `crossbook bench` run: a node to test, funded accounts, the lost-order check, files.

Contract:
- `SpawnedNode` starts `crossbook serve` on free ports (`http`, `ws`, `binary`) in a fresh
  data directory, with a generated configuration (`symbols` instruments, rate limits off)
  and a known admin key, and waits for `/ready`; `stop()` ends it with SIGTERM. With
  `workers`, REST is served by the workers while WebSocket and binary stay on the core.
  `remove()` deletes its directory (journal, history, log).
- `provision(...)` creates the accounts through the admin API (`crossbook.client.rest`),
  deposits generous balances of every asset and creates one trading key per account.
- `verify(...)` checks that nothing acknowledged was lost: with the node's data directory,
  every acknowledged order's client order id must be in a journaled `PlaceOrder`
  (`crossbook journal dump`, run as a separate process once the node has stopped), and,
  through the API, every open order of the run on the node must be one that was
  acknowledged, and every order the reports or events left open (`expected_open`, per
  account) must be open on the node.
- `process_tree_cpu(pid)` is the user+system CPU seconds of a process and its descendants
  (the node with its gateway workers and history process), from /proc; None elsewhere.
  With `descendants=False`, of the process alone.
- `write_results` writes the JSON result and two PNG plots (matplotlib, Agg): the latency
  percentile curve and throughput over time.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from crossbook.client.rest import Client
from crossbook.loadgen.run import Stats
from crossbook.loadgen.targets import Grid

ADMIN_KEY = "bench-admin-key-0123456789"
ADMIN_SECRET = "bench-admin-secret-0123456789abcdef"


CLI = [sys.executable, "-c", "import sys; from crossbook.cli import main; sys.exit(main())"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_config(symbols: int) -> str:
    lines = ['[[assets]]\ncode = "USDT"\nprecision = 8\n']
    lines += [f'[[assets]]\ncode = "C{i}"\nprecision = 8\n' for i in range(symbols)]
    lines += [
        f'[[instruments]]\nsymbol = "C{i}-USDT"\nbase = "C{i}"\nquote = "USDT"\n'
        'tick_size = "0.01"\nlot_size = "0.001"\nmin_notional = "0"\n'
        for i in range(symbols)
    ]
    lines.append("[limits]\nkey_weight_per_minute = 0\nkey_orders_per_10s = 0\n"
                 "key_orders_per_day = 0\nip_weight_per_minute = 0\n")
    return "\n".join(lines)


@dataclass
class SpawnedNode:
    symbols: int = 4
    workers: int = 0
    durability: str = "fsync"
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="crossbook-bench-")))
    http: tuple[str, int] = field(default_factory=lambda: ("127.0.0.1", free_port()))
    binary: tuple[str, int] = field(default_factory=lambda: ("127.0.0.1", free_port()))
    ws: tuple[str, int] = field(default_factory=lambda: ("127.0.0.1", free_port()))
    process: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def start(self, timeout: float = 60.0) -> None:
        config = self.root / "bench.toml"
        config.write_text(bench_config(self.symbols))
        command = [
            *CLI, "serve", "--data-dir", str(self.data_dir),
            "--http", f"{self.http[0]}:{self.http[1]}",
            "--binary", f"{self.binary[0]}:{self.binary[1]}",
            "--ws", f"{self.ws[0]}:{self.ws[1]}", "--config", str(config),
            "--durability", self.durability, "--workers", str(self.workers),
            "--log-level", "WARNING",
        ]
        env = {**os.environ, "CROSSBOOK_ADMIN_KEY": ADMIN_KEY,
               "CROSSBOOK_ADMIN_SECRET": ADMIN_SECRET}
        with (self.root / "node.log").open("ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        url = f"http://{self.http[0]}:{self.http[1]}/ready"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.root / "node.log").read_text()[-3000:])
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("node not ready in time")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass(frozen=True, slots=True)
class Provisioned:
    keys: dict[int, tuple[str, str]]
    grids: dict[str, Grid]
    mids: dict[str, int]


def provision(base_url: str, admin: tuple[str, str], accounts: range) -> Provisioned:
    with Client(base_url, api_key=admin[0], secret=admin[1], timeout=30) as client:
        instruments = client.instruments()
        grids = {i.symbol: Grid(Decimal(i.tick_size), Decimal(i.lot_size)) for i in instruments}
        mids = {i.symbol: int(Decimal(100) / Decimal(i.tick_size)) for i in instruments}
        assets = {i.base for i in instruments} | {i.quote for i in instruments}
        keys = {}
        for account in accounts:
            client.create_account(account)
            for asset in sorted(assets):
                client.deposit(account, asset, "1000000000", f"bench-{account}-{asset}")
            created = client.create_api_key(account, ["read", "trade"], "bench")
            assert created.secret is not None
            keys[account] = (created.key, created.secret)
    return Provisioned(keys, grids, mids)


def journaled_client_ids(data_dir: Path, prefix: str) -> set[str]:
    command = [*CLI, "journal", "dump", str(data_dir)]
    found: set[str] = set()
    with subprocess.Popen(command, stdout=subprocess.PIPE) as dump:
        assert dump.stdout is not None
        for line in dump.stdout:
            if prefix.encode() not in line:
                continue
            record = json.loads(line)
            for value in record["command"]:
                if isinstance(value, str) and value.startswith(prefix):
                    found.add(value)
    return found


def open_orders(base_url: str, keys: dict[int, tuple[str, str]]) -> dict[int, set[int]]:
    found = {}
    for account, (key, secret) in keys.items():
        with Client(base_url, api_key=key, secret=secret, timeout=30) as client:
            found[account] = {o.order_id for o in client.open_orders()}
    return found


def verify_state(
    base_url: str, keys: dict[int, tuple[str, str]], acked: list[tuple[int, str, int]],
    expected_open: dict[int, set[int]] | None,
) -> dict[str, Any]:
    on_node = open_orders(base_url, keys)
    acked_ids = {order_id for _, _, order_id in acked}
    unacked = sum(len(ids - acked_ids) for ids in on_node.values())
    result: dict[str, Any] = {
        "acked_orders": len(acked), "open_on_node": sum(map(len, on_node.values())),
        "open_on_node_not_acked": unacked,
    }
    if expected_open is not None:
        missing = sum(len(expected_open.get(a, set()) - ids) for a, ids in on_node.items())
        result["open_expected"] = sum(map(len, expected_open.values()))
        result["open_expected_missing_on_node"] = missing
    return result


def verify_journal(
    data_dir: Path, prefix: str, acked: list[tuple[int, str, int]]
) -> dict[str, Any]:
    journaled = journaled_client_ids(data_dir, prefix)
    missing = [cid for _, cid, _ in acked if cid not in journaled]
    return {"journaled_orders": len(journaled), "acked_missing_in_journal": len(missing),
            "missing_examples": missing[:10]}


def process_tree_cpu(pid: int, *, descendants: bool = True) -> float | None:
    """CPU seconds (user + system) used so far by `pid` and every live descendant."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    ticks: dict[int, tuple[int, int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        fields = text[text.rfind(")") + 2:].split()
        ticks[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    if pid not in ticks:
        return None
    total, frontier = 0, [pid]
    while frontier:
        current = frontier.pop()
        total += ticks[current][1]
        if not descendants:
            break
        frontier.extend(child for child, (parent, _) in ticks.items() if parent == current)
    return total / os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {"platform": platform.platform(), "python": platform.python_version(),
            "cpus": os.cpu_count(), "load_average": [round(x, 2) for x in load]}


def write_results(path: Path, result: dict[str, Any], stats: Stats) -> list[Path]:
    import matplotlib  # noqa: PLC0415 (only needed for the plots)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    curve = stats.curve()
    fig, ax = plt.subplots(figsize=(7, 4))
    xs = [1 / (1 - p / 100) if p < 100 else 1e5 for p, _ in curve]
    ax.plot(xs, [v / 1000 for _, v in curve], marker="o")
    ax.set_xscale("log")
    ax.set_xticks([1, 2, 10, 100, 1000, 10000, 100000])
    ax.set_xticklabels(["0%", "50%", "90%", "99%", "99.9%", "99.99%", "max"])
    ax.set_ylabel("latency (ms)")
    ax.set_title(result.get("title", "latency by percentile"))
    ax.grid(True, which="both", alpha=0.3)
    latency_png = path.with_suffix(".latency.png")
    fig.tight_layout()
    fig.savefig(latency_png)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(range(len(stats.timeline)), stats.timeline, drawstyle="steps-post")
    ax.set_xlabel("second")
    ax.set_ylabel("answers / s")
    ax.set_title("throughput over time")
    ax.grid(True, alpha=0.3)
    throughput_png = path.with_suffix(".throughput.png")
    fig.tight_layout()
    fig.savefig(throughput_png)
    plt.close(fig)
    return [latency_png, throughput_png]
