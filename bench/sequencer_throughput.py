"""Sequencer benchmark: commands/s through submit → journal (group commit) → apply → ack.

    python bench/sequencer_throughput.py [--commands N] [--warmup N] [--durability fsync os none]
                                         [--symbols 1 10] [--engines real null] [--seed S]
                                         [--window W] [--repeat R] [--loop uvloop asyncio]
                                         [--gc node default] [--submit one many]

Workload: `crossbook.sequencer.workload.order_flow` (70% limit within +-20 ticks of the mid,
10% market IOC, 20% cancels by client id; 10 accounts), built before timing.
Each configuration runs with the real `Exchange` and with a null engine (apply returns no
events) that isolates the sequencer and journal's own cost.
The data directory is a fresh temporary directory on the file system named in the result.

Run the way the node runs it: on uvloop (`--loop`), with the node's garbage-collector policy
(`--gc node`: `crossbook.gc_policy`'s thresholds from the start, and `tune_gc` - collect and
freeze - once the venue is set up and the workload built, as `crossbook serve` does once it
has recovered). `--warmup` commands of the same flow go through the sequencer untimed first,
so the timed part starts with warm caches and a book in its steady state.

Load is closed-loop: a producer keeps up to W commands in flight (in chunks of W/4, three
chunks at most) and submits more as acks arrive, so the sequencer is saturated and batch
sizes show group commit at work; `--window 4` gives batches of one to three commands, the
fixed cost per batch that a lightly loaded node pays per request. `--submit many` submits
each chunk with one `submit_many` (one future for it, as a gateway reading many requests at
once would) instead of a `submit` and a future per command. Latency percentiles are per
batch commit (write + fsync on the commit thread) and are not corrected for coordinated
omission: this measures capacity and CPU, not latency under an open arrival rate.

CPU (steadier than commands/s on a machine shared with other work), per command over the
timed part: `cpu_us_per_command` is the whole process (all threads), split into `phases_us`:
`engine` (the loop thread inside `engine.apply`, one thread-CPU clock read per batch),
`loop` (the rest of the loop thread: the producer's submits, stamping, journal encoding,
acknowledgements) and `commit_thread` (write + fsync and the hand-off back to the loop);
`system_us` is the part of the loop's and the commit thread's time spent in the kernel
(wake-ups, write, fsync). `cpu_us_per_batch` is the total per batch. With `--repeat` every
configuration runs R times in turn and the summary gives each one's median and range.
Writes bench/results/sequencer-<utc>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import platform
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from crossbook.domain.commands import Command
from crossbook.domain.events import Event
from crossbook.engine.exchange import Exchange
from crossbook.gc_policy import tune_gc, use_thresholds
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
    warmup: list[Command]
    commands: list[Command]


def build(commands: int, warmup: int, symbols: int, seed: int) -> Workload:
    flow = list(itertools.islice(order_flow(seed, symbols), warmup + commands))
    return Workload(
        f"flow-{symbols}sym", seed, setup_commands(symbols), flow[:warmup], flow[warmup:]
    )


async def drive(
    sequencer: Sequencer, commands: list[Command], window: int, many: bool = False
) -> None:
    """Closed loop: chunks of window/4 commands, at most three chunks in flight; each command
    `submit`ted with a future of its own, or (`many`) each chunk `submit_many`ed."""
    submit = sequencer.submit
    chunk = max(window // 4, 1)
    in_flight: list[asyncio.Future[object]] = []
    for start in range(0, len(commands), chunk):
        if many:
            in_flight.append(sequencer.submit_many(commands[start : start + chunk]))  # type: ignore[arg-type]
        else:
            futures = [submit(c) for c in commands[start : start + chunk]]
            in_flight.append(futures[-1])  # type: ignore[arg-type]
        if len(in_flight) >= 3:
            await in_flight.pop(0)
    for future in in_flight:
        await future


async def run_one(
    workload: Workload,
    durability: Durability,
    engine: Engine,
    window: int,
    base: Path,
    node_gc: bool,
    many: bool,
) -> dict[str, object]:
    directory = Path(tempfile.mkdtemp(dir=base))
    if node_gc:
        use_thresholds()
    journal, _ = open_journal(directory, durability=durability)
    config = SequencerConfig(
        inbox_size=max(window, 1),
        snapshot_every=None,
        snapshot_interval=None,
        record_samples=True,
        measure_apply=True,
    )
    sequencer = Sequencer(engine, journal, config=config)
    sequencer.start()
    for command in workload.setup:
        await sequencer.submit(command)
    if node_gc:
        tune_gc()
    await drive(sequencer, workload.warmup, window)
    stats = sequencer.stats
    stats.batch_sizes.clear()
    stats.commit_ns.clear()
    stats.apply_cpu_ns = 0
    commands = workload.commands
    process_started = resource.getrusage(resource.RUSAGE_SELF)
    loop_started = resource.getrusage(resource.RUSAGE_THREAD)
    started = time.perf_counter()
    await drive(sequencer, commands, window, many)
    seconds = time.perf_counter() - started
    loop_usage = resource.getrusage(resource.RUSAGE_THREAD)
    process_usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = _cpu(process_usage) - _cpu(process_started)
    loop_cpu = _cpu(loop_usage) - _cpu(loop_started)
    system = process_usage.ru_stime - process_started.ru_stime
    loop_system = loop_usage.ru_stime - loop_started.ru_stime
    apply_cpu = stats.apply_cpu_ns / 1e9
    await sequencer.stop()
    journal.close()
    count, batches = len(commands), len(stats.batch_sizes)
    per_command = 1e6 / count
    return {
        "engine": type(engine).__name__,
        "durability": durability.value,
        "submit": "many" if many else "one",
        "commands": count,
        "seconds": round(seconds, 3),
        "commands_per_s": round(count / seconds),
        "cpu_us_per_command": round(cpu * per_command, 2),
        "phases_us": {
            "engine": round(apply_cpu * per_command, 2),
            "loop": round((loop_cpu - apply_cpu) * per_command, 2),
            "commit_thread": round((cpu - loop_cpu) * per_command, 2),
        },
        "system_us": {
            "loop": round(loop_system * per_command, 2),
            "commit_thread": round((system - loop_system) * per_command, 2),
        },
        "cpu_us_per_batch": round(cpu * 1e6 / batches, 1),
        "batches": batches,
        "batch_size": percentiles(stats.batch_sizes, 1.0)
        | {"mean": round(statistics.fmean(stats.batch_sizes), 1)},
        "commit_latency_ms": percentiles(stats.commit_ns, 1e6),
        "data_dir": str(directory),
    }


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def runner(name: str) -> Callable[[Coroutine[Any, Any, dict[str, object]]], dict[str, object]]:
    if name == "uvloop":
        import uvloop

        return uvloop.run
    return asyncio.run


def summarize(results: list[dict[str, Any]]) -> list[dict[str, object]]:
    groups: dict[tuple[object, ...], list[dict[str, Any]]] = {}
    for result in results:
        key = (result["workload"]["name"], result["durability"], result["engine"])
        groups.setdefault(key, []).append(result)
    summary: list[dict[str, object]] = []
    for (name, durability, engine), runs in groups.items():
        row: dict[str, object] = {"workload": name, "durability": durability, "engine": engine}
        for field in ("cpu_us_per_command", "cpu_us_per_batch", "commands_per_s"):
            values = [run[field] for run in runs]
            row[field] = {
                "median": statistics.median(values),
                "min": min(values),
                "max": max(values),
            }
        for phase in ("engine", "loop", "commit_thread"):
            row[f"{phase}_us"] = statistics.median(run["phases_us"][phase] for run in runs)
        summary.append(row)
    return summary


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
    parser.add_argument("--commands", type=int, default=200_000)
    parser.add_argument("--warmup", type=int, default=20_000)
    parser.add_argument("--durability", nargs="+", default=["fsync", "os", "none"])
    parser.add_argument("--symbols", nargs="+", type=int, default=[1, 10])
    parser.add_argument("--engines", nargs="+", choices=["real", "null"], default=["real", "null"])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--window", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--gc", choices=["node", "default"], default="node")
    parser.add_argument("--submit", choices=["one", "many"], default="one")
    parser.add_argument("--dir", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="seqbench-", dir=args.dir))
    run = runner(args.loop)
    results = []
    for symbols in args.symbols:
        workload = build(args.commands, args.warmup, symbols, args.seed)
        for _, mode, kind in itertools.product(range(args.repeat), args.durability, args.engines):
            engine: Engine = Exchange() if kind == "real" else NullEngine()
            result = run(
                run_one(
                    workload,
                    Durability(mode),
                    engine,
                    args.window,
                    base,
                    args.gc == "node",
                    args.submit == "many",
                )
            )
            del engine
            gc.unfreeze()  # each run starts from the same collector state
            gc.collect()
            result["journal_bytes"] = remove(Path(str(result.pop("data_dir"))))
            result["workload"] = {"name": workload.name, "seed": workload.seed}
            print(json.dumps(result), flush=True)
            results.append(result)
    base.rmdir()
    summary = summarize(results)
    for row in summary:
        print(json.dumps(row), flush=True)
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
        "warmup": args.warmup,
        "loop": args.loop,
        "gc": args.gc,
        "load": "closed loop, saturating; commit latency not corrected for coordinated omission",
        "results": results,
        "summary": summary,
    }
    results_dir = Path(__file__).resolve().parent / "results"
    results_dir.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%S")
    (results_dir / f"sequencer-{stamp}.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
