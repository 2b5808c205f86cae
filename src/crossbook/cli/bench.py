"""`crossbook bench`: load a node over binary, WebSocket or REST and measure it honestly.

    crossbook bench --target binary --spawn --duration 20 --connections 8 --window 64
    crossbook bench --target binary --spawn --rate 50000 --duration 20
    crossbook bench --target ws --spawn --connections 8 --window 64
    crossbook bench --target rest --spawn --workers 2 --connections 32

Targets: `binary` (the binary protocol, TCP or `--unix`), `ws` (order entry on the native
`/v1/ws`: login with the key's signature, pipelined place/cancel/amend, the `user` channel
for order events) and `rest` (signed `/v1/orders`, one request at a time per connection).
`--spawn` starts a fresh node (fsync by default, `--workers N` gateway processes, rate limits
off) and stops it afterwards; otherwise give `--http`, `--binary` or `--ws`, and the admin
key (`--admin-key/--admin-secret`, or `--data-dir` holding `admin-key.json`); `--http` is
needed by every target (accounts, keys and the final check go through REST). The run creates
one funded account with its own key per connection, drives the order flow of
`crossbook.loadgen.flow` in closed loop (connections x window) or, with `--rate`, open loop
with latency from the intended send time, then checks that no acknowledged order was lost
and writes a JSON result and PNG plots (`--out`, default `bench/results/`).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

EPILOG = """\
examples:
  crossbook bench --spawn --target binary --connections 8 --window 64 --duration 10
  crossbook bench --spawn --target binary --connections 8 --rate 3000 --duration 10
  crossbook bench --spawn --target ws --connections 8 --window 64 --duration 10
  crossbook bench --spawn --target rest --workers 2 --connections 16 --duration 10

Closed loop (default): each connection keeps --window requests in flight (REST: one at a
time per connection, the rest queued). Open loop (--rate): latency from the intended send
time. After the run every acknowledged order is checked against the journal and the node;
the exit status is 1 if any is missing.
"""


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "bench", help="load generator: binary, WebSocket or REST; closed or open loop",
        description="Load a node with a seeded order flow and measure it: binary protocol, "
                    "WebSocket order entry (/v1/ws) or REST.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--target", choices=("binary", "ws", "rest"), default="binary",
                        help="binary protocol, native WebSocket order entry, or REST")
    parser.add_argument("--spawn", action="store_true", help="start a fresh node to measure")
    parser.add_argument("--workers", type=int, default=0, help="with --spawn: gateway workers")
    parser.add_argument("--durability", default="fsync", choices=("fsync", "os", "none"))
    parser.add_argument("--symbols", type=int, default=4, help="with --spawn: instruments")
    parser.add_argument("--http", type=_address, default=("127.0.0.1", 8000),
                        help="the node's HTTP address (setup and the final check)")
    parser.add_argument("--binary", type=_address, default=("127.0.0.1", 9000))
    parser.add_argument("--ws", type=_address, default=("127.0.0.1", 8001),
                        help="the node's WebSocket address (target ws)")
    parser.add_argument("--unix", type=Path, default=None,
                        help="binary over this Unix socket instead of TCP")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="the node's data dir: admin key file and the journal check")
    parser.add_argument("--admin-key", default=os.environ.get("CROSSBOOK_ADMIN_KEY"))
    parser.add_argument("--admin-secret", default=os.environ.get("CROSSBOOK_ADMIN_SECRET"))
    parser.add_argument("--connections", type=int, default=8,
                        help="connections, each trading for its own account")
    parser.add_argument("--window", type=int, default=32, help="closed loop: in flight each")
    parser.add_argument("--rate", type=float, default=None, help="open loop: requests/s")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None, help="result JSON path")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvloop  # noqa: PLC0415 (keep `crossbook --help` fast)

    from crossbook.loadgen.session import bench  # noqa: PLC0415

    result = uvloop.run(bench(args))
    print(json.dumps({k: result[k] for k in ("summary", "verify", "files")}, indent=1))
    problems = result["verify"].get("acked_missing_in_journal", 0) + result["verify"].get(
        "open_on_node_not_acked", 0) + result["verify"].get("open_expected_missing_on_node", 0)
    return 1 if problems else 0

