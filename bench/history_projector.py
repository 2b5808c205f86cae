"""History projector benchmark: live throughput into SQLite and PostgreSQL, and catch-up.

    python bench/history_projector.py [--commands N] [--repeat R] [--seed S] [--stores ...]

Workload: tests/support/history_workload.py, seeded: two symbols, 20 funded accounts, then
~45% resting limit orders, ~35% crossing orders (accept, trade with fees, four balance
changes), ~13% cancels, ~4% amends, ~3% rejects; timestamps a few ms apart. Records are
built and cut into random batches (1..300 commands, as the sequencer's load-adaptive turns
would) before timing. "Events" counts every event of the records, as an engine emits them,
whether or not it becomes a row (`AccountCreated` and `FundsDeposited` do not); the generator
emits no depth changes, which the engine adds (about 0.8 per command in `bench/sinks.py`'s
workload), so the same projection of an engine's output counts more events per command.

- live: every batch is offered through `on_batch` at once (the sequencer never waits), then
  the clock stops when `flush()` returns, so the figure is the writer's sustained rate with a
  full queue: events stored per second, from an empty database.
- catch-up: the database is empty and the projector's `catch_up` source (records held in
  memory, so engine replay time is excluded) holds everything; the figure is events stored
  per second until the lag is zero and the secondary indexes, dropped for this bulk load
  into an empty database, are built again (`flush()` waits for both).
PostgreSQL runs from the local server binaries in a temporary directory with its default
settings (fsync on, synchronous_commit on); the projector's own transactions commit without
waiting for the WAL flush unless `--synchronous-commit on` (a node does the same: it
re-derives any commit a crash loses from the journal), with up to `--pg-writers`
transactions (default: the store's, 2) in flight on their own connections. The process uses
the collector policy of a node's history process unless `--gc default`. R runs each, median
reported, with the CPU each run used: this process's (the projector: building rows,
encoding, the store's driver) and, for PostgreSQL, the server's (every server process, Linux
only); on a shared machine they are steadier than the wall clock. Writes
bench/results/history-<utc>.json with the workload, seed, machine and server version.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.history_workload import Workload, batches
from tests.support.postgres import PostgresServer, find_bindir

from crossbook.gc_policy import use_thresholds
from crossbook.history.postgres import PostgresStore
from crossbook.history.projector import Projector
from crossbook.history.sqlite import SqliteStore
from crossbook.history.store import HistoryStore
from crossbook.sequencer.ports import Applied


def _source(parts: list[list[Applied]]) -> Callable[[int], Iterator[list[Applied]]]:
    def source(after: int) -> Iterator[list[Applied]]:
        for part in parts:
            if part[-1].seq > after:
                yield part

    return source


async def _live(store: HistoryStore, parts: list[list[Applied]], chunk: int) -> float:
    # like a node's: a catch-up source (unused unless a write fails or the queue overflows)
    projector = Projector(store, catch_up=_source(parts), chunk_commands=chunk)
    await projector.start()
    started = time.perf_counter()
    for part in parts:
        projector.on_batch(part)
    await projector.flush()
    elapsed = time.perf_counter() - started
    await projector.stop()
    return elapsed


async def _catch_up(store: HistoryStore, parts: list[list[Applied]], chunk: int) -> float:
    projector = Projector(store, catch_up=_source(parts), chunk_commands=chunk)
    projector.head_seq = parts[-1][-1].seq
    started = time.perf_counter()
    await projector.start()
    await projector.flush()
    elapsed = time.perf_counter() - started
    await projector.stop()
    return elapsed


def _measure(
    name: str,
    make: Callable[[int], HistoryStore],
    parts: list[list[Applied]],
    events: int,
    args: argparse.Namespace,
    server_cpu: Callable[[], float] | None = None,
) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    run = 0
    for mode, fn in (("live", _live), ("catch-up", _catch_up)):
        rates, client, server = [], [], []
        for _ in range(args.repeat):
            run += 1
            store = make(run)
            server_before = server_cpu() if server_cpu else 0.0
            cpu_before = time.process_time()
            elapsed = asyncio.run(fn(store, parts, args.chunk))
            client.append(time.process_time() - cpu_before)
            if server_cpu:
                time.sleep(0.5)  # closed backends exit and are reaped
                server.append(server_cpu() - server_before)
            rates.append(events / elapsed)
        row: dict[str, object] = {
            "store": name,
            "mode": mode,
            "events": events,
            "events_per_s_median": round(statistics.median(rates)),
            "events_per_s_runs": [round(r) for r in rates],
            "client_cpu_s_runs": [round(c, 2) for c in client],
        }
        cpu = f"client CPU {statistics.median(client):.2f} s"
        if server:
            row["server_cpu_s_runs"] = [round(c, 2) for c in server]
            cpu += f", server CPU {statistics.median(server):.2f} s"
        runs = " ".join(f"{r:,.0f}" for r in rates)
        print(f"{name:10} {mode:9} {row['events_per_s_median']:>10,} events/s  [{runs}]  {cpu}")
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chunk", type=int, default=20_000, help="records per transaction")
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument(
        "--synchronous-commit", choices=["on", "off"], default="off",
        help="PostgreSQL transactions wait for the WAL flush (on) or not (off: what a node "
        "does, since it re-derives lost commits from the journal)",
    )  # fmt: skip
    parser.add_argument(
        "--pg-writers", type=int, default=PostgresStore.concurrent_writes,
        help="PostgreSQL transactions in flight at once, each on its own connection",
    )
    parser.add_argument(
        "--pg-setting", action="append", default=[], metavar="NAME=VALUE",
        help="a PostgreSQL server setting for the run (repeatable; default: server defaults)",
    )  # fmt: skip
    parser.add_argument(
        "--gc", choices=["node", "default"], default="node",
        help="the collector policy of a node's history process (crossbook.gc_policy) or "
        "CPython's defaults",
    )  # fmt: skip
    args = parser.parse_args()
    PostgresStore.concurrent_writes = args.pg_writers
    if args.gc == "node":
        use_thresholds()

    stream = list(Workload(seed=args.seed).stream(args.commands))
    parts = batches(stream, seed=args.seed)
    events = sum(len(a.events) for a in stream)
    results: list[dict[str, object]] = []
    server_version = None
    with tempfile.TemporaryDirectory(prefix="crossbook-bench-") as tmp:
        if "sqlite" in args.stores:
            results += _measure(
                "sqlite", lambda n: SqliteStore(Path(tmp) / f"h{n}.sqlite3"), parts, events, args
            )
        bindir = find_bindir()
        if "postgresql" in args.stores and bindir is not None:
            server = PostgresServer.create(
                bindir, dict(setting.split("=", 1) for setting in args.pg_setting)
            )
            try:
                server.start()
                server_version = subprocess.run(
                    [str(bindir / "postgres"), "--version"], capture_output=True, text=True,
                    check=False,
                ).stdout.strip()  # fmt: skip
                results += _measure(
                    "postgresql",
                    lambda n: PostgresStore(
                        server.create_database(f"bench_{n}"),
                        synchronous_commit=args.synchronous_commit == "on",
                    ),
                    parts,
                    events,
                    args,
                    server.cpu_seconds if sys.platform == "linux" else None,
                )
            finally:
                server.destroy()

    out = {
        "benchmark": "history_projector",
        "when": datetime.now(UTC).isoformat(),
        "workload": {
            "generator": "tests/support/history_workload.py",
            "commands": args.commands,
            "events": events,
            "batches": len(parts),
            "seed": args.seed,
            "records_per_transaction": args.chunk,
            "postgresql_writers": args.pg_writers,
        },
        "gc": args.gc,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "postgresql": server_version,
            "postgresql_settings": "server defaults (fsync on, synchronous_commit on)"
            + "".join(f", {setting}" for setting in args.pg_setting)
            + f"; projector transactions synchronous_commit={args.synchronous_commit}",
        },
        "results": results,
    }
    path = Path(__file__).parent / "results" / f"history-{out['when'][:19].replace(':', '')}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
