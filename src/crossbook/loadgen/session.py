"""One `crossbook bench` run, end to end: node, accounts, load, verification, result files.

`bench(args)` takes the parsed `crossbook bench` arguments (see `crossbook.cli.bench`) and
returns the result dictionary it also wrote to disk: the configuration, the machine (with
load average), the summary (throughput, HDR percentiles in µs, errors by code, mix,
timeline, CPU per answered request of the load generator and, when it spawned the node, of
the node's processes together and of its main process alone) and the lost-order
verification. For binary and WebSocket, which see every change of their accounts' orders,
the verification also checks that every order the reports and events left open is open on
the node (WebSocket: for each account whose stream
never reconnected; `ws_accounts_not_exact` counts the others). A node it spawned is
stopped, and its directory removed once the run and its checks completed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
from pathlib import Path
from typing import Any

from crossbook.loadgen.flow import OrderFlow
from crossbook.loadgen.run import run_load
from crossbook.loadgen.setup import (
    ADMIN_KEY,
    ADMIN_SECRET,
    SpawnedNode,
    machine,
    process_tree_cpu,
    provision,
    verify_journal,
    verify_state,
    write_results,
)
from crossbook.loadgen.targets import BinaryTarget, RestTarget, Target, WsTarget


def _admin(args: argparse.Namespace) -> tuple[str, str]:
    if args.admin_key and args.admin_secret:
        return str(args.admin_key), str(args.admin_secret)
    if args.data_dir is not None:
        stored = json.loads((args.data_dir / "admin-key.json").read_text())
        return str(stored["key"]), str(stored["secret"])
    raise SystemExit("crossbook bench: give --admin-key/--admin-secret or --data-dir")


def default_out(target: str, workers: int) -> Path:
    """Where a run's JSON goes unless `--out` says otherwise."""
    stamp = time.strftime("%Y-%m-%dT%H%M%S", time.gmtime())
    return Path("bench/results") / f"loadgen-{target}-w{workers}-{stamp}.json"


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    node: SpawnedNode | None = None
    http, binary, ws, data_dir = args.http, args.binary, args.ws, args.data_dir
    if args.spawn:
        node = SpawnedNode(args.symbols, args.workers, args.durability)
        await asyncio.to_thread(node.start)
        http, binary, ws, data_dir = node.http, node.binary, node.ws, node.data_dir
        admin = (ADMIN_KEY, ADMIN_SECRET)
    else:
        admin = _admin(args)
    base_url = f"http://{http[0]}:{http[1]}"
    first = 1_000_000 + secrets.randbelow(1_000_000) * 1000
    accounts = range(first, first + args.connections)
    try:
        setup = await asyncio.to_thread(provision, base_url, admin, accounts)
        prefix = f"b{secrets.token_hex(4)}"
        flow = OrderFlow(args.seed, setup.mids, run=prefix)
        acked: list[tuple[int, str, int]] = []
        targets: list[Target] = []
        for account in accounts:
            key, secret = setup.keys[account]
            if args.target == "binary":
                unix = args.unix or (data_dir / "binary.sock" if args.spawn else None)
                if unix is not None:
                    targets.append(BinaryTarget(account, key, secret, flow, acked, path=str(unix)))
                else:
                    targets.append(BinaryTarget(account, key, secret, flow, acked,
                                                host=binary[0], port=binary[1]))
            elif args.target == "ws":
                targets.append(WsTarget(account, key, secret, flow, acked,
                                        f"ws://{ws[0]}:{ws[1]}/v1/ws", setup.grids))
            else:
                targets.append(RestTarget(account, key, secret, flow, acked, http[0], http[1],
                                          setup.grids))
        await asyncio.gather(*(t.open() for t in targets))
        node_pid = node.process.pid if node is not None and node.process is not None else 0
        node_cpu = process_tree_cpu(node_pid) if node_pid else None
        main_cpu = process_tree_cpu(node_pid, descendants=False) if node_pid else None
        own_cpu = time.process_time()
        stats = await run_load(
            targets, flow, duration=args.duration, window=args.window, rate=args.rate,
            progress=not args.no_progress,
        )
        cpu = {"loadgen_s": time.process_time() - own_cpu}
        if node_cpu is not None and main_cpu is not None:
            cpu["node_s"] = (process_tree_cpu(node_pid) or node_cpu) - node_cpu
            cpu["node_main_s"] = (
                process_tree_cpu(node_pid, descendants=False) or main_cpu) - main_cpu
        await asyncio.sleep(0.5)  # unsolicited reports still on their way
        for target in targets:
            await target.close()
        expected = None
        if args.target == "binary":
            expected = {a: set(flow.open.get(a, {})) for a in accounts}
        elif args.target == "ws":
            exact = [t.account for t in targets if isinstance(t, WsTarget) and t.exact]
            expected = {a: set(flow.open.get(a, {})) for a in exact}
        verify = await asyncio.to_thread(
            verify_state, base_url, setup.keys, acked, expected)
        if args.target == "ws":
            verify["ws_accounts_not_exact"] = len(accounts) - len(expected or {})
    finally:
        if node is not None:
            await asyncio.to_thread(node.stop)
    if data_dir is not None and node is not None:
        verify |= await asyncio.to_thread(verify_journal, data_dir, prefix, acked)
        await asyncio.to_thread(node.remove)  # kept for inspection when the run failed
    mode = "open" if args.rate else "closed"
    result: dict[str, Any] = {
        "benchmark": "crossbook bench",
        "title": f"{args.target}, {args.workers} workers, {mode} loop"
                 + (f" at {args.rate:,.0f}/s" if args.rate else
                    f", {args.connections}x{args.window}"),
        "config": {k: (str(v) if isinstance(v, Path | tuple) else v)
                   for k, v in vars(args).items() if k != "func"},
        "machine": machine(),
        "coordinated_omission": "open loop: latency from the intended send time; "
                                "closed loop: send to answer, window per connection",
        "summary": stats.summary() | {"cpu_us_per_answer": {
            name[:-2]: round(seconds * 1e6 / max(stats.done, 1), 1)
            for name, seconds in cpu.items()
        }},
        "verify": verify,
    }
    out = args.out or default_out(args.target, args.workers)
    files = write_results(out, result, stats)
    result["files"] = [str(out), *map(str, files)]
    return result
