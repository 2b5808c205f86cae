"""Sequencer benchmark: commands/s through submit → journal (group commit) → apply → ack.

    python bench/sequencer_throughput.py [--commands N] [--durability fsync os none]
                                         [--symbols 1 10] [--seed S] [--window W]

Workload: `crossbook.sequencer.workload.order_flow` (70% limit within +-20 ticks of the mid,
10% market IOC, 20% cancels by client id; 10 accounts), built before timing.
Each configuration runs twice: with the real `Exchange`, and with a null
engine (apply returns no events) that isolates the sequencer and journal's own cost.
The data directory is a fresh temporary directory on the file system named in the result.

Load is closed-loop: a producer keeps up to W commands in flight and submits more as acks
arrive, so the sequencer is saturated and batch sizes show group commit at work. Latency
percentiles are per batch commit (write + fsync on the worker thread) and are not corrected
for coordinated omission: this measures capacity, not latency under an open arrival rate.
`cpu_us_per_command` is the process's CPU time (all threads) over the timed part per command:
steadier than commands/s on a machine shared with other work.
Writes bench/results/sequencer-<utc>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from crossbook.domain.commands import Command
from crossbook.domain.events import Event
from crossbook.engine.exchange import Exchange
from crossbook.journal.file import Durability, open_journal
from crossbook.sequencer.loop import Sequencer, SequencerConfig
from crossbook.sequencer.ports import Engine
from crossbook.sequencer.workload import order_flow, setup_commands


class NullEngine:
    """Applies nothing: isolates the sequencer and journal."""

    last_seq = 0

    def apply(self, seq: int, ts: int, command: Command) -> list[Event]:
        self.last_seq = seq
        return []

    def snapshot(self) -> bytes:
        return b""

    def state_hash(self) -> str:
        return ""

    def next_expiry(self) -> int | None:
        return None


def percentiles(values: list[int], scale: float) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / scale, 3)

    return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": round(ordered[-1] / scale, 3)}


class Workload(NamedTuple):
    name: str
    seed: int
    setup: list[Command]
    commands: list[Command]


def build(commands: int, symbols: int, seed: int) -> Workload:
    flow = list(itertools.islice(order_flow(seed, symbols), commands))
    return Workload(f"flow-{symbols}sym", seed, setup_commands(symbols), flow)


async def run_one(
    workload: Workload, durability: Durability, engine: Engine, window: int, base: Path
) -> dict[str, object]:
    directory = Path(tempfile.mkdtemp(dir=base))
    journal, _ = open_journal(directory, durability=durability)
    config = SequencerConfig(
        inbox_size=window, snapshot_every=None, snapshot_interval=None, record_samples=True
    )
    sequencer = Sequencer(engine, journal, config=config)
    sequencer.start()
    for command in workload.setup:
        await sequencer.submit(command)
    sequencer.stats.batch_sizes.clear()
    sequencer.stats.commit_ns.clear()
    commands, submit = workload.commands, sequencer.submit
    chunk = max(window // 4, 1)
    cpu_started = time.process_time()
    started = time.perf_counter()
    in_flight: list[asyncio.Future[object]] = []
    for start in range(0, len(commands), chunk):
        futures = [submit(c) for c in commands[start : start + chunk]]
        in_flight.append(futures[-1])  # type: ignore[arg-type]
        if len(in_flight) >= 3:
            await in_flight.pop(0)
    for future in in_flight:
        await future
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    await sequencer.stop()
    journal.close()
    stats = sequencer.stats
    return {
        "engine": type(engine).__name__,
        "durability": durability.value,
        "commands": len(commands),
        "seconds": round(seconds, 3),
        "commands_per_s": round(len(commands) / seconds),
        "cpu_us_per_command": round(cpu * 1e6 / len(commands), 2),
        "batches": len(stats.batch_sizes),
        "batch_size": percentiles(stats.batch_sizes, 1.0)
        | {"mean": round(statistics.fmean(stats.batch_sizes), 1)},
        "commit_latency_ms": percentiles(stats.commit_ns, 1e6),
        "data_dir": str(directory),
    }


def remove(directory: Path) -> int:
    size = sum(f.stat().st_size for f in directory.iterdir())
    shutil.rmtree(directory)
    return size


def filesystem(path: Path) -> str:
    best, kind = "", "unknown"
    with open("/proc/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if str(path).startswith(fields[1]) and len(fields[1]) > len(best):
                best, kind = fields[1], fields[2]
    return kind


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", type=int, default=50_000)
    parser.add_argument("--durability", nargs="+", default=["fsync", "os", "none"])
    parser.add_argument("--symbols", nargs="+", type=int, default=[1, 10])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--window", type=int, default=4096)
    parser.add_argument("--dir", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="seqbench-", dir=args.dir))
    results = []
    for symbols in args.symbols:
        workload = build(args.commands, symbols, args.seed)
        for mode in args.durability:
            for engine in (Exchange(), NullEngine()):
                result = asyncio.run(run_one(workload, Durability(mode), engine, args.window, base))
                result["journal_bytes"] = remove(Path(str(result.pop("data_dir"))))
                result["workload"] = {"name": workload.name, "seed": workload.seed}
                print(json.dumps(result), flush=True)
                results.append(result)
    base.rmdir()
    out = {
        "benchmark": "sequencer_throughput",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "filesystem": filesystem(args.dir),
        },
        "window": args.window,
        "load": "closed loop, saturating; commit latency not corrected for coordinated omission",
        "results": results,
    }
    results_dir = Path(__file__).resolve().parent / "results"
    results_dir.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%S")
    (results_dir / f"sequencer-{stamp}.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
