"""REST order entry end to end: signed `POST /v1/orders` against `crossbook serve` with fsync.

    python bench/rest_orders.py [--seconds 5] [--connections 1,16,64] [--seed 7]

Setup: a fresh data directory, `--durability fsync`, rate limits raised out of the way, two
funded accounts with one trade key each. Workload (seeded): limit orders of 0.001 BTC on
BTC-USDT, buys at 59,950-60,010 and sells at 59,990-60,050, so about one in five crosses
and trades; the rest rest on the book.

Capacity: wrk (C, one thread, keep-alive, closed loop) replays pre-signed requests (each
signed with its own body, a 60 s receive window, so the server verifies every HMAC) for
`--seconds` at 1, 16 and 64 connections. Closed-loop latency hides coordinated omission, so
it is reported only as observed. Latency at a fixed offered load: bench/http_load.py sends
1,000 orders/s open loop (requests due every millisecond; latency counts from when a request
was due) on 16 connections (`--rate-connections`), signing each at send time. A request due
while every connection waits for an answer waits for one: when the round trip passes 16 ms
(a loaded machine), 16 connections carry less than 1,000/s and the backlog grows in the
generator, which `--trace` shows as its own part.

Server CPU per request: the node's user+system CPU time over the run divided by requests;
its history process's likewise (a history process that restarts mid-run undercounts). Bytes
toward the disk per request, node and history process (`/proc/PID/io` write_bytes: the
journal's and the history database's writes, which share the device's syncs).
Node-side latency of the open loop: the node's `request` stage (the socket read that
completed a request until its answer is written) beside the client's, with the node's loop
delay and collector pauses (`/metrics`).

`--trace` runs the node with a latency trace (`CROSSBOOK_LATENCY_TRACE`) and attributes the
open loop's slow requests: each client request is matched with the node's record of it (by
connection and order) and split into generator delay (due until written to the socket),
until the node read it, intake (read until submitted to the sequencer), sequencer (until
durable and applied), response, and until the generator read the answer; for the slowest
1% and 0.1% it reports the mean of each part and how many overlapped a collection in the
node, a late loop timer, a history database write, or a group commit over 2 ms. Each request's
sequencer part is also split by its batch's hand-offs (`handoffs_ms`): waiting in the inbox
(behind the previous batch's commit), the commit thread waking, the commit (write and
fdatasync), the loop waking to release the batch, and sinks until the handler resumed.
Writes bench/results/rest-orders-<utc>.json with machine, Python, seed and load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from bisect import bisect_left, bisect_right
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crossbook.config import DEFAULT_TOML
from crossbook.gateway.auth import sign
from framework_overhead import free_port, run_wrk, wait_port
from http_load import run_load

ADMIN = ("bench-admin-key-0123456789", "bench-admin-secret-0123456789abcdef")
LIMITS = """
[limits]
key_weight_per_minute = 0
key_orders_per_10s = 0
key_orders_per_day = 0
ip_weight_per_minute = 0
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds(pid: int) -> float:
    """User+system CPU of `pid`'s live child processes (the node's history process)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    total = 0.0
    for child in children:
        try:
            total += cpu_seconds(int(child))
        except OSError:
            continue
    return total


def io_write_bytes(pid: int, children: bool = False) -> int:
    """Bytes `pid` (or its live child processes) sent toward the disk (`/proc/PID/io`
    write_bytes: counted when a page is dirtied or written directly)."""
    pids = [pid]
    if children:
        try:
            pids = [int(c) for c in
                    Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            return 0
    total = 0
    for one in pids:
        try:
            for line in Path(f"/proc/{one}/io").read_text().splitlines():
                if line.startswith("write_bytes:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def stage_buckets(port: int) -> dict[str, dict[float, float]]:
    """The node's latency histograms: stage (or `loop_delay`, `gc_pause_<generation>`) ->
    upper bound (s) -> cumulative count."""
    found: dict[str, dict[float, float]] = {}
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics").text.splitlines():
        labels, _, value = line.rpartition(" ")
        if line.startswith("crossbook_stage_seconds_bucket"):
            name = labels.split('stage="')[1].split('"')[0]
        elif line.startswith("crossbook_loop_delay_seconds_bucket"):
            name = "loop_delay"
        elif line.startswith("crossbook_gc_pause_seconds_bucket"):
            name = "gc_pause_" + labels.split('generation="')[1].split('"')[0]
        else:
            continue
        bound = float(labels.split('le="')[1].split('"')[0])
        found.setdefault(name, {})[bound] = float(value)
    return found


PARTS = ("generator", "to_node", "intake", "sequencer", "response", "to_client")


def attribute(records: list[tuple[int, int, int, int]], trace: dict[str, Any],
              history_writes: list[list[int]]) -> dict[str, Any]:
    """Split each open-loop request's latency (client records beside the node's trace);
    `timeline_500ms_max_ms`: per half second of due times, the largest latency, generator
    delay and node-side time; `sequencer_split_ms`: the sequencer part before, during and
    after its batch's commit; `group_commits`: the journal's commit times and how often a
    commit overlapped a history database write, over all and over the slowest 1%."""
    by_port: dict[int, list[list[int]]] = {}
    for node_record in trace["requests"]:
        by_port.setdefault(node_record[0], []).append(node_record)
    client_by_port: dict[int, list[tuple[int, int, int, int]]] = {}
    for record in records:
        client_by_port.setdefault(record[0], []).append(record)
    rows = []
    for port, client in client_by_port.items():
        node = by_port.get(port, [])[-len(client):]  # the setup's requests came first
        for (_, due, sent, done), (_, received, submitted, resumed, written, _) in zip(
                client, node, strict=False):
            rows.append((done - due, (sent - due, received - sent, submitted - received,
                                      resumed - submitted, written - resumed, done - written),
                         sent, done, submitted, resumed))
    rows.sort(key=lambda row: row[0])
    began = min((r[2] - r[1][0] for r in rows), default=0)
    ended = max((r[3] for r in rows), default=0)
    batches = sorted(b for b in trace["batches"] if began <= b[0] <= ended)  # the open loop's
    gcs, lags = trace["gcs"], trace["lags"]

    def overlaps(spans: list[Any], start: int, end: int) -> bool:
        return any(a < end and b > start for a, b, *_ in spans)

    def slow_commit(submitted: int, resumed: int) -> bool:
        return any(submitted <= at <= resumed and nanos > 2_000_000
                   for at, nanos, _ in batches)

    def describe(chosen: list[Any]) -> dict[str, Any]:
        n = max(1, len(chosen))
        return {
            "count": len(chosen),
            "latency_ms_mean": round(sum(r[0] for r in chosen) / n / 1e6, 3),
            "parts_ms_mean": {name: round(sum(r[1][i] for r in chosen) / n / 1e6, 3)
                              for i, name in enumerate(PARTS)},
            "share_overlapping": {
                "node_gc": round(sum(overlaps(gcs, r[2], r[3]) for r in chosen) / n, 3),
                "node_loop_late_2ms": round(sum(overlaps(lags, r[2], r[3]) for r in chosen)
                                            / n, 3),
                "history_write": round(sum(overlaps(history_writes, r[2], r[3])
                                           for r in chosen) / n, 3),
                "group_commit_over_2ms": round(sum(slow_commit(r[4], r[5]) for r in chosen)
                                               / n, 3),
            },
        }

    total = len(rows)
    node_side = sorted(r[1][2] + r[1][3] + r[1][4] for r in rows)

    def pct(values: list[int], q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))] / 1e6, 3) if values \
            else 0.0

    timeline: list[list[float]] = []
    if rows:
        windows: dict[int, list[Any]] = {}
        for r in rows:
            windows.setdefault((r[2] - r[1][0] - began) // 500_000_000, []).append(r)
        for _, chosen in sorted(windows.items()):
            timeline.append([round(max(r[0] for r in chosen) / 1e6, 1),
                             round(max(r[1][0] for r in chosen) / 1e6, 1),
                             round(max(r[1][2] + r[1][3] + r[1][4] for r in chosen) / 1e6, 1)])
    # the sequencer part of each request around its batch's commit: the batch is the last
    # one the sinks saw before the handler resumed (it resumes at the loop's next wait after
    # its batch's sinks, before the next batch's commit can return); before = submit until
    # the sinks saw it less the
    # commit's duration (queue wait, the previous batch's commit, the hand-offs to and from
    # the commit thread), then the commit, then sinks and resuming the handler
    sink_times = [at for at, _, _ in batches]
    before, during, after = [], [], []
    for r in rows:
        submitted, resumed = r[4], r[5]
        at = bisect_right(sink_times, resumed) - 1
        if at >= 0 and batches[at][0] >= submitted:
            sink_at, nanos, _ = batches[at]
            before.append(sink_at - nanos - submitted)
            during.append(nanos)
            after.append(resumed - sink_at)
    sequencer_split = {
        name: {"p50": pct(sorted(values), 0.5), "p99": pct(sorted(values), 0.99),
               "p999": pct(sorted(values), 0.999)}
        for name, values in (("before_commit", before), ("commit", during),
                             ("sinks_and_resume", after))
    }
    # each request's batch by its hand-offs (the first turn started after it was submitted):
    # waiting in the inbox (for the previous batch's commit), the commit thread waking, the
    # commit (write + fdatasync), the loop waking to release it, sinks and resuming the handler
    turns = sorted(t for t in trace.get("turns", []) if began <= t[0] <= ended)
    turn_starts = [t[0] for t in turns]
    handoffs: list[list[int]] = [[], [], [], [], []]
    slow_handoffs: list[list[int]] = [[], [], [], [], []]
    behind_commit = 0
    slowest_rows = {id(r) for r in rows[int(total * 0.99):]}
    for r in rows:
        submitted, resumed = r[4], r[5]
        at = bisect_left(turn_starts, submitted)
        if at >= len(turns) or turns[at][3] > resumed:
            continue
        turn_at, commit_began, commit_ended, released, _ = turns[at]
        parts = (turn_at - submitted, commit_began - turn_at, commit_ended - commit_began,
                 released - commit_ended, resumed - released)
        behind_commit += at > 0 and turns[at - 1][3] > submitted
        for index, value in enumerate(parts):
            handoffs[index].append(value)
            if id(r) in slowest_rows:
                slow_handoffs[index].append(value)
    names = ("inbox_wait", "to_commit_thread", "write_and_sync", "to_loop", "sinks_and_resume")
    handoff_split = {
        name: {"p50": pct(sorted(values), 0.5), "p90": pct(sorted(values), 0.9),
               "p99": pct(sorted(values), 0.99), "p999": pct(sorted(values), 0.999),
               "slowest_1pct_mean": round(sum(slow) / max(1, len(slow)) / 1e6, 3)}
        for name, values, slow in zip(names, handoffs, slow_handoffs, strict=True)
    }
    handoff_split["share_behind_a_commit"] = {
        "share": round(behind_commit / max(1, len(handoffs[0])), 3)}
    # group commits (the sinks saw each batch just after its commit returned)
    durations = sorted(nanos for _, nanos, _ in batches)
    slowest = sorted(batches, key=lambda b: b[1])[int(len(batches) * 0.99):]

    def commit_overlap(chosen: list[Any]) -> float:
        hits = sum(overlaps(history_writes, at - nanos, at) for at, nanos, _ in chosen)
        return round(hits / max(1, len(chosen)), 3)

    commits = {
        "count": len(batches),
        "ms": {"p50": pct(durations, 0.5), "p99": pct(durations, 0.99),
               "p999": pct(durations, 0.999),
               "max": round(durations[-1] / 1e6, 3) if durations else 0.0},
        "share_overlapping_history_write": commit_overlap(batches),
        "slowest_1pct_share_overlapping_history_write": commit_overlap(slowest),
    }
    return {
        "sequencer_split_ms": sequencer_split,
        "handoffs_ms": handoff_split,
        "group_commits": commits,
        "timeline_500ms_max_ms": timeline,
        "matched": total,
        "node_side_ms": {"p50": pct(node_side, 0.5), "p99": pct(node_side, 0.99),
                         "p999": pct(node_side, 0.999)},
        "parts_ms_p50": {name: pct(sorted(r[1][i] for r in rows), 0.5)
                         for i, name in enumerate(PARTS)},
        "all": describe(rows),
        "slowest_1pct": describe(rows[int(total * 0.99):]),
        "slowest_01pct": describe(rows[int(total * 0.999):]),
        "node_gcs": len(gcs),
        "node_gc_ms_max": round(max((b - a for a, b, *_ in gcs), default=0) / 1e6, 3),
        "node_late_probes_2ms": len(lags),
        "history_writes": len(history_writes),
        "history_write_ms_max": round(max((b - a for a, b, *_ in history_writes), default=0)
                                      / 1e6, 3),
    }


def stage_summary(before: dict[str, dict[float, float]],
                  after: dict[str, dict[float, float]]) -> dict[str, dict[str, Any]]:
    """Per stage over the run: count and the bucket bounds (ms) holding p50, p99 and p99.9."""
    out: dict[str, dict[str, Any]] = {}
    for stage, buckets in after.items():
        bounds = sorted(buckets)
        counts = [buckets[b] - before.get(stage, {}).get(b, 0.0) for b in bounds]
        total = counts[-1] if counts else 0.0
        summary: dict[str, Any] = {"count": int(total)}
        for name, q in (("p50_le", 0.5), ("p99_le", 0.99), ("p999_le", 0.999)):
            summary[name] = next((b * 1000 for b, c in zip(bounds, counts, strict=True)
                                  if total and c >= q * total), None)
        out[stage] = summary
    return out


def signed(method: str, path: str, body: bytes, key: str, secret: str, port: int) -> bytes:
    ts = time.time_ns() // 1_000_000
    signature = sign(secret, ts, method, path, body)
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"X-CB-APIKEY: {key}\r\nX-CB-TIMESTAMP: {ts}\r\nX-CB-SIGNATURE: {signature}\r\n"
        f"X-CB-RECV-WINDOW: 60000\r\n\r\n"
    ).encode() + body


def order_body(rng: random.Random) -> bytes:
    if rng.random() < 0.5:
        side, price = "buy", 59_950 + rng.randrange(61)
    else:
        side, price = "sell", 59_990 + rng.randrange(61)
    return json.dumps({"symbol": "BTC-USDT", "type": "limit", "side": side,
                       "quantity": "0.001", "price": str(price)}).encode()


def setup(port: int) -> list[tuple[str, str]]:
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}")

    def admin(path: str, body: dict[str, Any]) -> Any:
        raw = json.dumps(body).encode()
        ts = time.time_ns() // 1_000_000
        response = client.post(path, content=raw, headers={
            "X-CB-APIKEY": ADMIN[0], "X-CB-TIMESTAMP": str(ts),
            "X-CB-SIGNATURE": sign(ADMIN[1], ts, "POST", path, raw)})
        response.raise_for_status()
        return response.json()

    keys = []
    for account in (1, 2):
        admin("/v1/admin/accounts", {"account": account})
        for asset, amount in (("USDT", "1000000000"), ("BTC", "1000000")):
            admin("/v1/admin/deposits", {"account": account, "asset": asset,
                                         "amount": amount, "tx_id": f"{account}-{asset}"})
        created = admin("/v1/admin/api-keys", {"account": account,
                                               "permissions": ["read", "trade"]})
        keys.append((created["key"], created["secret"]))
    client.close()
    return keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", default="1,16,64")
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--rate-seconds", type=int, default=10)
    parser.add_argument("--rate-connections", type=int, default=16,
                        help="connections of the open loop (a request due while all are "
                             "busy waits for one, and that wait counts)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--durability", default="fsync")
    parser.add_argument("--history", default=None,
                        help="the node's --history (default: SQLite in the data dir; off)")
    parser.add_argument("--trace", action="store_true",
                        help="attribute the open loop's slow requests (node latency trace)")
    args = parser.parse_args()
    if args.rate <= 0 or args.rate_seconds <= 0:
        parser.error("--rate and --rate-seconds must be positive: the open loop always runs")
    if not shutil.which("wrk"):
        raise SystemExit("install wrk (apt-get install wrk) for the capacity runs")
    import uvloop

    work = Path(tempfile.mkdtemp(prefix="crossbook-bench-"))
    config = work / "node.toml"
    config.write_text(DEFAULT_TOML + LIMITS)
    port = free_port()
    exe = Path(sys.executable).with_name("crossbook")
    log = (work / "node.log").open("wb")
    trace_file = work / "trace.json"
    node = subprocess.Popen(
        [str(exe), "serve", "--data-dir", str(work / "data"), "--http", f"127.0.0.1:{port}",
         "--config", str(config), "--durability", args.durability, "--log-level", "WARNING",
         *(["--history", args.history] if args.history else [])],
        env={**os.environ, "CROSSBOOK_ADMIN_KEY": ADMIN[0],
             "CROSSBOOK_ADMIN_SECRET": ADMIN[1],
             **({"CROSSBOOK_LATENCY_TRACE": str(trace_file)} if args.trace else {})},
        stdout=log, stderr=log,
    )
    results: dict[str, Any] = {}
    load = None
    try:
        wait_port(port)
        keys = setup(port)
        rng = random.Random(args.seed)
        for conns in [int(c) for c in args.connections.split(",") if c]:
            requests_file = work / f"requests-{conns}.http"
            with requests_file.open("wb") as out:
                for i in range(20_000):
                    key, secret = keys[i % 2]
                    out.write(signed("POST", "/v1/orders", order_body(rng), key, secret, port))
                    out.write(b"\n--8<--\n")
            before, children_before = cpu_seconds(node.pid), children_cpu_seconds(node.pid)
            result = run_wrk(port, requests_file, conns, args.seconds)
            used = cpu_seconds(node.pid) - before
            children_used = children_cpu_seconds(node.pid) - children_before
            result["server_cpu_us_per_request"] = round(used / max(1, result["requests"]) * 1e6, 1)
            result["history_cpu_us_per_request"] = round(
                children_used / max(1, result["requests"]) * 1e6, 1)
            results[f"closed_loop_{conns}_connections"] = result
            print(conns, "connections:", result, flush=True)

        def make(i: int) -> bytes:
            key, secret = keys[i % 2]
            return signed("POST", "/v1/orders", order_body(rng), key, secret, port)

        before, children_before = cpu_seconds(node.pid), children_cpu_seconds(node.pid)
        written_before = io_write_bytes(node.pid), io_write_bytes(node.pid, children=True)
        stages_before = stage_buckets(port)
        load = uvloop.run(run_load("127.0.0.1", port, make, connections=args.rate_connections,
                                   total=args.rate * args.rate_seconds, rate=args.rate))
        summary = load.summary()
        summary["server_cpu_us_per_request"] = round(
            (cpu_seconds(node.pid) - before) / max(1, load.sent) * 1e6, 1)
        summary["history_cpu_us_per_request"] = round(
            (children_cpu_seconds(node.pid) - children_before) / max(1, load.sent) * 1e6, 1)
        summary["node_write_bytes_per_request"] = round(
            (io_write_bytes(node.pid) - written_before[0]) / max(1, load.sent))
        summary["history_write_bytes_per_request"] = round(
            (io_write_bytes(node.pid, children=True) - written_before[1]) / max(1, load.sent))
        summary["node_stages_ms"] = stage_summary(stages_before, stage_buckets(port))
        summary["connections"] = args.rate_connections
        results[f"open_loop_{args.rate}_per_second"] = summary
        print("open loop:", summary, flush=True)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        results["batch_size_metric"] = [
            line for line in metrics.splitlines() if line.startswith("crossbook_batch_size_")
            and ("_sum" in line or "_count" in line)
        ]
    finally:
        node.send_signal(signal.SIGTERM)
        node.wait(30)
        log.close()
    if args.trace and load is not None:
        history_file = Path(str(trace_file) + ".history")
        history_writes = json.loads(history_file.read_text()) if history_file.exists() else []
        found = attribute(load.records, json.loads(trace_file.read_text()), history_writes)
        results[f"open_loop_{args.rate}_per_second"]["attribution"] = found
        print("attribution:", json.dumps(found, indent=1), flush=True)
    record = {
        "benchmark": "rest_orders",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(),
                    "load_average": os.getloadavg()},
        "python": sys.version.split()[0],
        "seed": args.seed,
        "durability": args.durability,
        "history": args.history or "sqlite",
        "env": {k: v for k, v in os.environ.items()
                if k.startswith("CROSSBOOK_") and "SECRET" not in k and "KEY" not in k},
        "auth": "HMAC-SHA256 verified per request",
        "results": results,
    }
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"rest-orders-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
