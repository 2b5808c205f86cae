"""WebSocket fan-out: many clients in other processes, subscribed to a node under order load.

Setup: `crossbook serve` in a subprocess (fsync by default), `--procs` client processes that
open `--clients` connections between them, each on the Binance raw path
`/ws/btcusdt@trade/btcusdt@bookTicker/btcusdt@depth@100ms` (`--streams`), and a seeded open-loop
order load (`--rate` orders/s, about 40% of them crossing so trades flow) sent from this
process over two pipelined `/v1/ws` connections.

Per run the clients count every message, by second, and the delivery latency of each message
that carries an event time (`E`: trades and depth diffs) as receive wall time minus `E`
(sampled: the oldest and the newest of each socket read, see `_Tally`). `E` is
in whole milliseconds and taken from the batch stamp before the journal sync, so the latency
includes the fsync and is overstated by up to 1 ms. Latency is reported per stream: trades
are real time; `@depth@100ms` diffs wait up to 100 ms for their interval by design.
Dropped clients: the server's count of clients it closed as slow (`/stats`), and connections
the clients saw end during the window.

Where the latency comes from: each run also records the node's group commits over the run
(`journal_sync_ms`, from `/metrics`: the trade latency includes one), its batches and
flushes per second, the CPU one flush costs (`flush_ms`, the writes' system calls included)
and its wall time from start to last write (`round_ms`),
the clients written per flush, the node's CPU per delivered message, and, per client
process, its CPU share (and the kernel's part of it) and its own loop lag
(`client_loop_lag_ms`: how late a 1 ms timer fires; a message that arrives while the process
is busy, or descheduled, waits that long there), and the clients' reads per second and CPU
per read. A client loop lag near the trade latency means the clients measure themselves.
Each round writes every client once and each write is a read on the other side, so a round
costs the machine about `writes_per_flush` times (`flush_ms` / `writes_per_flush` +
`client_cpu_us_per_read`) of CPU: what limits how often rounds can follow each other.

The node's garbage collections over the run come from `/metrics` (`gc`: per generation, the
collections, their total pause and the bucket bound holding the longest), to tell a pause of
the loop from a slow round.

`--workers N` serves the clients from N gateway worker processes (`crossbook serve --workers`):
the node's CPU is then the core's and the workers' (`core_cpu_share`, `worker_cpu_shares`),
and the server figures from `/stats` are those of whichever process answers. `CROSSBOOK_WS_*`
variables in the environment reach the node (`Limits.from_env`: e.g.
`CROSSBOOK_WS_FLUSH_SHARE=1.0`).

Results: `bench/results/ws-fanout-<stamp>.json` (machine, seed, workload, every run, medians)
and a PNG next to it (messages/s over time, latency distribution).

    .venv/bin/python bench/ws_fanout.py --clients 100 1000 --runs 3 --duration 10 --rate 600
"""

from __future__ import annotations

import argparse
import array
import asyncio
import json
import multiprocessing as mp
import os
import random
import resource
import time
from multiprocessing.connection import Connection
from typing import Any, cast

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from ws_common import cpu_s, fund, login, machine, percentile, save, start_node, worker_pids

STREAMS = "btcusdt@trade/btcusdt@bookTicker/btcusdt@depth@100ms"


# -- client processes ---------------------------------------------------------------------
#
# The clients must not be the bottleneck on a 2-core machine, so they do not go through a
# WebSocket library's per-message callback: each connection is a plain asyncio protocol that
# does the upgrade itself and then scans whatever the socket delivers with C-level searches.
# Every message of the default streams starts with `{"e":"trade"`, `{"e":"depthUpdate"` or
# `{"u":` (bookTicker), and none contains a nested object, so counting those openings counts
# messages exactly; the bytes from the last `{` of a read are kept for the next one.

_TRADE = b'{"e":"trade","E":'
_DEPTH = b'{"e":"depthUpdate","E":'
_TICKER = b'{"u":'
_PING = b"\x89\x80\0\0\0\0"
"""A masked, empty PING: keeps the server's idle heartbeat from firing (it answers PONG)."""


def _stamp(data: bytes, at: int, prefix: bytes) -> int:
    start = at + len(prefix)
    return int(data[start:data.index(b",", start)])


class _Tally:
    """Counts every message; samples latency from the first (oldest) and the last (newest)
    trade and depth diff of each socket read, so the per-message cost stays in C."""

    def __init__(self) -> None:
        self.per_second: dict[int, int] = {}
        self.trade = array.array("f")
        self.depth = array.array("f")
        self.lag = array.array("f")
        """How late the client's loop ran a 1 ms timer (its own backlog), in ms."""
        self.window = (0.0, 0.0)
        self.lost = 0
        self.reads = 0
        """Socket reads in the window (about one per client and round of the server)."""

    def take(self, data: bytes) -> None:
        now = time.time()
        start, end = self.window
        if not start <= now < end:
            return
        self.reads += 1
        trades, diffs = data.count(_TRADE), data.count(_DEPTH)
        count = trades + diffs + data.count(_TICKER)
        if count:
            second = int(now)
            self.per_second[second] = self.per_second.get(second, 0) + count
        now_ms = now * 1000.0
        for n, prefix, out in ((trades, _TRADE, self.trade), (diffs, _DEPTH, self.depth)):
            if n:
                out.append(now_ms - _stamp(data, data.find(prefix), prefix))
            if n > 1:
                out.append(now_ms - _stamp(data, data.rfind(prefix), prefix))


class _Client(asyncio.Protocol):
    def __init__(self, tally: _Tally, request: bytes) -> None:
        self.tally = tally
        self.request = request
        self.head = b""
        self.carry = b""
        self.open: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if not self.open.done():
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.head.startswith(b"HTTP/1.1 101"):
                self.open.set_exception(ConnectionError(self.head[:80].decode("latin-1")))
                return
            data, self.head = self.head[end + 4:], b""
            self.open.set_result(None)
        data = self.carry + data
        cut = data.rfind(b"{", max(0, len(data) - 48))
        if cut >= 0:
            self.carry, data = data[cut:], data[:cut]
        else:
            self.carry = b""
        self.tally.take(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if time.time() < self.tally.window[1]:
            self.tally.lost += 1


async def _probe(tally: _Tally) -> None:
    """Samples the client loop's own delay: a message that lands while the loop is busy with
    other sockets waits that long in this process, not in the server."""
    start, end = tally.window
    await asyncio.sleep(max(0.0, start - time.time()))
    clock = time.perf_counter
    while time.time() < end:
        before = clock()
        await asyncio.sleep(0.001)
        tally.lag.append((clock() - before) * 1000.0 - 1.0)


async def _client_main(host: str, port: int, path: str, count: int, pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    tally = _Tally()
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode()
    clients: list[_Client] = []
    failed = 0
    for _ in range(count):
        try:
            _, client = await loop.create_connection(lambda: _Client(tally, request), host, port)
            await asyncio.wait_for(client.open, 10)
            clients.append(client)
        except (OSError, ConnectionError, TimeoutError):
            failed += 1
    pipe.send(("ready", failed))
    start, end = await loop.run_in_executor(None, pipe.recv)
    tally.window = (start, end)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    probe = loop.create_task(_probe(tally))
    while time.time() < end + 0.5:
        for client in clients:
            if client.transport is not None and not client.transport.is_closing():
                client.transport.write(_PING)
        await asyncio.sleep(min(5.0, max(0.0, end + 0.5 - time.time())))
    for client in clients:
        if client.transport is not None:
            client.transport.abort()
    await probe
    usage = resource.getrusage(resource.RUSAGE_SELF)
    pipe.send({
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "window_cpu_s": usage.ru_utime + usage.ru_stime - cpu0.ru_utime - cpu0.ru_stime,
        "window_sys_s": usage.ru_stime - cpu0.ru_stime,
        "lag": tally.lag.tobytes(), "reads": tally.reads,
        "per_second": tally.per_second, "trade": tally.trade.tobytes(),
        "depth": tally.depth.tobytes(), "lost": tally.lost, "failed": failed,
    })


def client_process(host: str, port: int, path: str, count: int, pipe: Connection) -> None:
    import uvloop

    uvloop.run(_client_main(host, port, path, count, pipe))


# -- the order load -----------------------------------------------------------------------


class _Trader(WSListener):
    def __init__(self) -> None:
        self.transport: WSTransport | None = None
        self.replies = 0
        self.errors = 0
        self.first_error: Any = None
        self.logged: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if not self.logged.done():
            self.logged.set_result(None)
            return
        data = frame.get_payload_as_bytes()
        self.replies += 1
        if b'"error"' in data:
            self.errors += 1
            self.first_error = self.first_error or data.decode()


async def _traders(url: str, keys: list[tuple[str, str]]) -> list[_Trader]:
    traders = []
    for key, secret in keys:
        transport, listener = await ws_connect(_Trader, url)
        assert isinstance(listener, _Trader)
        listener.transport = transport
        transport.send(WSMsgType.TEXT, login(key, secret))
        await listener.logged
        traders.append(listener)
    return traders


async def order_load(traders: list[_Trader], rate: float, seconds: float, seed: int,
                     state: dict[str, int]) -> dict[str, Any]:
    """Open loop at `rate` orders/s: 60% passive limits near the mid, 40% crossing IOC."""
    rng = random.Random(seed)
    started = time.perf_counter()
    sent = 0
    while (elapsed := time.perf_counter() - started) < seconds:
        due = int(rate * elapsed) - sent
        for _ in range(due):
            state["mid"] += rng.choice((-1, 0, 1))
            mid = state["mid"]
            buy = rng.random() < 0.5
            trader = traders[rng.randrange(len(traders))]
            qty = f"0.{rng.randint(100, 2000):05d}"
            if rng.random() < 0.4:  # crossing: takes what rests on the other side
                price, tif = (mid + 20) if buy else (mid - 20), "IOC"
            else:
                offset = rng.randint(1, 20)
                price, tif = (mid - offset) if buy else (mid + offset), "GTC"
            state["id"] += 1
            assert trader.transport is not None
            trader.transport.send(WSMsgType.TEXT, (
                b'{"op":"place","id":%d,"order":{"symbol":"BTC-USDT","side":"%s","type":'
                b'"limit","price":"%d.%02d","quantity":"%s","time_in_force":"%s"}}'
                % (state["id"], b"buy" if buy else b"sell", price // 100, price % 100,
                   qty.encode(), tif.encode())))
        sent += due
        await asyncio.sleep(0.005)
    return {"sent": sent, "elapsed_s": round(time.perf_counter() - started, 3)}


# -- one run ------------------------------------------------------------------------------


def _metrics(node: Any) -> list[str]:
    return cast(list[str], node.http.get("/metrics").text.splitlines())


def _sync_buckets(lines: list[str]) -> dict[float, float]:
    """The node's `journal_sync` histogram (cumulative count per upper bound in seconds)."""
    found: dict[float, float] = {}
    for line in lines:
        if line.startswith("crossbook_stage_seconds_bucket") and '"journal_sync"' in line:
            labels, _, value = line.rpartition(" ")
            bound = labels.split('le="')[1].split('"')[0]
            found[float(bound)] = float(value)
    return found


def _gc(lines: list[str]) -> dict[tuple[str, str], float]:
    """The node's `gc_pause_seconds` series: (generation, `count`/`sum`/bucket bound) -> value."""
    found: dict[tuple[str, str], float] = {}
    for line in lines:
        if line.startswith("crossbook_gc_pause_seconds"):
            labels, _, value = line.rpartition(" ")
            generation = labels.split('generation="')[1].split('"')[0]
            if "_bucket" in labels:
                what = labels.split('le="')[1].split('"')[0]
            else:
                what = "sum" if "_sum" in labels else "count"
            found[(generation, what)] = float(value)
    return found


def _gc_summary(before: dict[tuple[str, str], float],
                after: dict[tuple[str, str], float]) -> dict[str, Any]:
    """Per generation: collections during the run, their total pause (ms) and the smallest
    bucket bound (ms) that holds all of them."""
    delta = {key: value - before.get(key, 0.0) for key, value in after.items()}
    out: dict[str, Any] = {}
    for generation in sorted({g for g, _ in delta}):
        count = delta.get((generation, "count"), 0.0)
        bounds = sorted((float(what), value) for (g, what), value in delta.items()
                        if g == generation and what not in ("count", "sum"))
        out[generation] = {
            "collections": int(count),
            "pause_ms": round(delta.get((generation, "sum"), 0.0) * 1000, 2),
            "longest_le_ms": next((b * 1000 for b, n in bounds if count and n >= count), None),
        }
    return out


def _sync_summary(before: dict[float, float], after: dict[float, float]) -> dict[str, Any]:
    """Group commits (write + fdatasync) during the run: the bucket bound holding p50 and p99,
    in ms. Trade latency counts from the batch stamp, so it includes one of these."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    out: dict[str, Any] = {"count": int(total)}
    for name, q in (("p50_le", 0.5), ("p99_le", 0.99)):
        out[name] = next((b * 1000 for b, c in zip(bounds, counts, strict=True)
                          if total and c >= q * total), None)
    return out


def run_once(args: argparse.Namespace, node: Any, keys: list[tuple[str, str]], clients: int,
             seed: int, state: dict[str, int]) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    pipes, procs = [], []
    for p in range(args.procs):
        share = clients // args.procs + (1 if p < clients % args.procs else 0)
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=client_process, daemon=True, args=(
            "127.0.0.1", node.ws_port, f"/ws/{args.streams}", share, child))
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    failed = sum(pipe.recv()[1] for pipe in pipes)
    connected = node.http.get("/stats").json()["connections"]
    before = node.http.get("/stats").json()
    metrics = _metrics(node)
    syncs, collections = _sync_buckets(metrics), _gc(metrics)
    start = time.time() + args.warmup
    end = start + args.duration
    for pipe in pipes:
        pipe.send((start, end))
    assert node.process is not None
    workers = worker_pids(node.process.pid)
    cpu0 = cpu_s(node.process.pid)
    workers0 = [cpu_s(pid) for pid in workers]

    async def load() -> dict[str, Any]:
        traders = await _traders(f"{node.ws_url}/v1/ws", keys)
        result = await order_load(traders, args.rate, args.warmup + args.duration, seed, state)
        await asyncio.sleep(0.5)
        result.update(replies=sum(t.replies for t in traders),
                      errors=sum(t.errors for t in traders),
                      first_error=next((t.first_error for t in traders if t.first_error), None))
        for t in traders:
            assert t.transport is not None
            t.transport.disconnect()
        return result

    import uvloop

    loaded = uvloop.run(load())
    core_cpu = cpu_s(node.process.pid) - cpu0
    workers_cpu = [cpu_s(pid) - before for pid, before in zip(workers, workers0, strict=True)]
    cpu = core_cpu + sum(workers_cpu)
    span = args.warmup + args.duration + 0.5
    parts = [pipe.recv() for pipe in pipes]
    for proc in procs:
        proc.join(10)
    after = node.http.get("/stats").json()
    metrics = _metrics(node)
    per_second: dict[int, int] = {}
    trade, depth, lag = array.array("f"), array.array("f"), array.array("f")
    for part in parts:
        lag.frombytes(part["lag"])
        for second, n in part["per_second"].items():
            per_second[second] = per_second.get(second, 0) + n
        trade.frombytes(part["trade"])
        depth.frombytes(part["depth"])
    total = sum(per_second.values())
    seconds = sorted(per_second)
    series = [per_second[s] for s in seconds]
    trade_l, depth_l = sorted(trade), sorted(depth)
    return {
        "clients": clients, "connected": connected, "connect_failures": failed,
        "messages": total, "messages_per_s": round(total / args.duration, 1),
        "series_per_s": series,
        "trade_latency_ms": _summary(trade_l), "depth100ms_latency_ms": _summary(depth_l),
        "journal_sync_ms": _sync_summary(syncs, _sync_buckets(metrics)),
        "gc": _gc_summary(collections, _gc(metrics)),
        "dropped_clients": after["dropped_clients"] - before["dropped_clients"],
        "lost_connections": sum(p["lost"] for p in parts),
        "server_messages": after["messages"] - before["messages"],
        "server_published": after["published"] - before["published"],
        "node_cpu_share": round(cpu / (args.warmup + args.duration + 0.5), 3),
        "core_cpu_share": round(core_cpu / (args.warmup + args.duration + 0.5), 3),
        "worker_cpu_shares": [round(w / (args.warmup + args.duration + 0.5), 3)
                              for w in workers_cpu],
        "node_cpu_us_per_server_message": round(
            cpu * 1e6 / max(1, after["messages"] - before["messages"]), 3),
        # the node's CPU covers the warm-up too, when messages flow at the same rate
        "node_cpu_us_per_delivered_message": round(cpu * 1e6 / max(
            1.0, total * (args.warmup + args.duration) / args.duration), 3),
        "client_cpu_s": round(sum(p["cpu_s"] for p in parts), 2),
        "client_cpu_share_per_process": [
            round(p["window_cpu_s"] / (args.duration + 0.5), 3) for p in parts],
        "client_sys_share_per_process": [
            round(p["window_sys_s"] / (args.duration + 0.5), 3) for p in parts],
        "client_reads_per_s": round(sum(p["reads"] for p in parts) / args.duration, 1),
        # the window's CPU covers half a second more than its reads
        "client_cpu_us_per_read": round(sum(p["window_cpu_s"] for p in parts) * 1e6 / max(
            1.0, sum(p["reads"] for p in parts) * (args.duration + 0.5) / args.duration), 2),
        "client_loop_lag_ms": _summary(sorted(lag)),
        "batches_per_s": round((after["batches"] - before["batches"]) / span, 1),
        "flushes_per_s": round((after["flushes"] - before["flushes"]) / span, 1),
        "flush_ms": round((after.get("flush_s", 0.0) - before.get("flush_s", 0.0)) * 1e3 / max(
            1, after["flushes"] - before["flushes"]), 3),
        "round_ms": round((after.get("round_s", 0.0) - before.get("round_s", 0.0)) * 1e3 / max(
            1, after["flushes"] - before["flushes"]), 3),
        "writes_per_flush": round((after.get("writes", 0) - before.get("writes", 0)) / max(
            1, after["flushes"] - before["flushes"]), 1),
        "load": loaded, "load_average_after": os.getloadavg(),
        "_trade": trade_l[:: max(1, len(trade_l) // 20000)],
    }


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"count": 0}
    return {"count": len(values), "p50": round(percentile(values, 0.5), 2),
            "p99": round(percentile(values, 0.99), 2), "max": round(values[-1], 2)}


# -- report -------------------------------------------------------------------------------


def plot(path: str, runs: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for i, run in enumerate(runs):
        label = f"{run['clients']} clients, run {run['run']}"
        left.plot(range(len(run["series_per_s"])), run["series_per_s"], label=label,
                  color=f"C{i}")
        lat = run["_trade"]
        if lat:
            right.plot(lat, [k / len(lat) for k in range(len(lat))], label=label, color=f"C{i}")
    left.set(title="messages delivered per second", xlabel="second of the window",
             ylabel="messages/s")
    left.set_ylim(bottom=0)
    right.set(title="trade delivery latency (event time to receive)", xlabel="ms",
              ylabel="fraction of messages", xscale="log")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rate", type=float, default=600.0, help="orders/s sent")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--streams", default=STREAMS)
    parser.add_argument("--durability", default="fsync", choices=("fsync", "os", "none"))
    parser.add_argument("--workers", type=int, default=0, help=(
        "gateway worker processes serving the WebSocket clients (the server figures from "
        "/stats are then one process's, whichever answers)"))
    args = parser.parse_args()
    node = start_node(args.durability, args.workers)
    runs: list[dict[str, Any]] = []
    try:
        keys = [fund(node, 601), fund(node, 602)]
        state = {"mid": 3_000_000, "id": 0}
        for clients in args.clients:
            for r in range(args.runs):
                run = run_once(args, node, keys, clients, args.seed + r, state)
                run["run"] = r
                runs.append(run)
                print(json.dumps({k: v for k, v in run.items()
                                  if not k.startswith("_") and k != "series_per_s"}),
                      flush=True)
    finally:
        node.close()
    summary = {}
    for clients in args.clients:
        mine = [r for r in runs if r["clients"] == clients]
        rates = sorted(r["messages_per_s"] for r in mine)
        p99s = sorted(r["trade_latency_ms"].get("p99", 0.0) for r in mine)
        summary[str(clients)] = {
            "median_messages_per_s": rates[len(rates) // 2], "min_messages_per_s": rates[0],
            "max_messages_per_s": rates[-1], "median_trade_p99_ms": p99s[len(p99s) // 2],
            "trade_p50_ms": sorted(r["trade_latency_ms"].get("p50", 0.0)
                                   for r in mine)[len(mine) // 2],
            "dropped_clients": sum(r["dropped_clients"] for r in mine),
            "node_cpu_us_per_delivered_message": _median(
                [r["node_cpu_us_per_delivered_message"] for r in mine]),
            "client_loop_lag_p99_ms": _median(
                [r["client_loop_lag_ms"].get("p99", 0.0) for r in mine]),
            "flush_ms": _median([r["flush_ms"] for r in mine]),
            "round_ms": _median([r["round_ms"] for r in mine]),
        }
    result = {
        "benchmark": "ws_fanout", "seed": args.seed,
        "workload": {"rate_orders_per_s": args.rate, "crossing_share": 0.4,
                     "streams": args.streams.split("/"), "durability": args.durability,
                     "duration_s": args.duration, "warmup_s": args.warmup,
                     "client_processes": args.procs, "symbol": "BTC-USDT",
                     "workers": args.workers},
        "summary": summary,
        "runs": [{k: v for k, v in r.items() if not k.startswith("_")} for r in runs],
        "machine_at_start": machine(),
    }
    path = save("ws-fanout", result)
    png = path.with_suffix(".png")
    plot(str(png), runs)
    print(json.dumps(summary), "->", path, png)


if __name__ == "__main__":
    main()
