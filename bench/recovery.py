"""Recovery benchmark: how long a node takes to come back from 1,000,000 journaled commands.

    python bench/recovery.py [--commands N] [--symbols S] [--seed S] [--snapshot-at F]
                             [--dir DATA_DIR] [--repeat R]

Build: a data directory (`journal/` + `snapshots/`, the layout `open_core` opens) holding a
journal of exactly N records: the venue setup of bench/workload.py followed by its seeded
`engine_mix` order flow (about 60% limit, 30% cancel of resting orders, 10% market; amounts far
below 2**62). Records go through the real writer (`FileJournal.append`/`commit`) in batches of
`BATCH` sharing one stamp, as the sequencer writes them, while an engine applies them; at
`--snapshot-at` (default 90%) that engine's snapshot goes into the real `SnapshotStore`.
To save time the build uses durability `none` (buffered writes, no fsync): the files are the
same bytes a durable node writes, only how they reached the disk differs, and recovery never
looks at that. With `--dir`, an existing directory built with the same parameters is reused
(its `bench-manifest.json` says how it was built); an empty or missing one is built there.
Without `--dir` a temporary directory is used and removed afterwards.

Measure: each measurement runs in a fresh Python process (`--measure KIND`), so no engine
object, decoder cache or heap is shared with the build; times are taken inside that process
around the call (interpreter start and imports are reported separately as `process_seconds`).

- `full`: `full_replay` from the first record (one pass: CRCs, decode, seq checks, apply
  everything), then the state hash, timed separately.
- `snapshot`: `recover_directory`, the blocking part of `open_core` a node runs at start:
  lock, scan and validate the whole journal, restore the newest snapshot (checked against its
  hash), replay the tail, hash the result.
- `scan`: `scan_journal` as a node's start runs it: CRC of every frame and the seq chain,
  decoding only the first and last records' stamps of each segment.
- `decode`: `full_replay`'s pass without an engine (`scan_journal` decoding every record and
  handing it to a function that does nothing): the journal's own share of a full replay.

The files are read once before measuring, so every measurement sees a warm page cache
(dropping caches needs root; recovery from a cold disk adds the read time of the journal).
`cpu_seconds` is the measuring process's CPU time over the whole measurement, hashes included
(steadier than the wall clock on a shared machine).
`records/s` is the journal's records over those seconds (for `snapshot`, all of them, though
only the tail is applied).
The measuring process uses the node's garbage-collector thresholds (`crossbook.gc_policy`).
Both recoveries must reach the state hash the build ended with, or the run fails.
The engine build (plain Python or compiled with mypyc) is recorded; compile the engine into a
copy of `src/` and put that first on PYTHONPATH to measure the compiled one.
Writes bench/results/recovery-<utc>.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crossbook.domain.commands import Command
from crossbook.engine import exchange as exchange_module
from crossbook.engine.exchange import Exchange
from crossbook.gc_policy import GC_THRESHOLDS
from crossbook.journal.core import JOURNAL_DIR, open_store, recover_directory
from crossbook.journal.file import Durability, open_journal
from crossbook.journal.recovery import full_replay
from crossbook.journal.segments import scan_journal
from crossbook.sequencer.ports import SnapshotMeta

ENGINE_BUILD = "mypyc" if (exchange_module.__file__ or "").endswith(".so") else "python"
MANIFEST = "bench-manifest.json"
BATCH = 64
"""Records per commit, sharing one stamp (a sequencer batch under moderate load)."""
T0 = 1_767_225_600_000_000_000
"""First stamp (2026-01-01 UTC, in ns); each batch is stamped 10 microseconds later."""
KINDS = ("full", "snapshot", "scan", "decode")
BUILD_KEYS = (
    "durability_while_building",
    "workload",
    "engine_build",
    "generate_seconds",
    "build_seconds",
    "snapshot_seq",
    "snapshot_body_bytes",
    "journal_segments",
    "journal_bytes",
)


# -- build ------------------------------------------------------------------------------------


def build_params(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "records": args.commands,
        "symbols": args.symbols,
        "accounts": args.accounts,
        "seed": args.seed,
        "snapshot_at": args.snapshot_at,
        "batch": BATCH,
    }


def build(data_dir: Path, params: dict[str, Any]) -> dict[str, Any]:
    from workload import engine_mix, setup_commands

    total = params["records"]
    setup_len = len(setup_commands(params["symbols"], params["accounts"]))
    if total <= setup_len:
        raise SystemExit(f"--commands must exceed the {setup_len} setup commands")
    print(
        f"generating workload: {total - setup_len:,} commands after {setup_len} setup ...",
        file=sys.stderr,
        flush=True,
    )
    started = time.perf_counter()
    workload = engine_mix(
        total - setup_len, params["symbols"], params["accounts"], seed=params["seed"]
    )
    generate_seconds = time.perf_counter() - started
    commands = [*workload.setup, *workload.commands]
    assert len(commands) == total
    snapshot_seq = max(1, min(total, round(total * params["snapshot_at"])))

    journal, _ = open_journal(data_dir / JOURNAL_DIR, durability=Durability.NONE)
    store = open_store(data_dir, Durability.NONE)
    engine = Exchange()
    apply, append, commit = engine.apply, journal.append, journal.commit
    report_every = max(total // 20, 1)
    started = time.perf_counter()
    snapshot_bytes, snapshot_hash = 0, ""
    seq, ts = 0, T0
    try:
        for start in range(0, total, BATCH):
            ts = T0 + (start // BATCH) * 10_000
            batch = commands[start : start + BATCH]
            first = seq + 1
            for offset, command in enumerate(batch):
                append(first + offset, ts, command)
            commit()
            for offset, command in enumerate(batch):
                apply(first + offset, ts, command)
                seq = first + offset
                if seq == snapshot_seq:
                    snapshot_hash = engine.state_hash()
                    body = engine.snapshot()
                    store.write(SnapshotMeta(seq, ts, snapshot_hash, time.time_ns()), body)
                    snapshot_bytes = len(body)
                if seq % report_every == 0 or seq == total:
                    rate = seq / (time.perf_counter() - started)
                    print(
                        f"\rbuilding: {seq:>12,} / {total:,} records written ({rate:,.0f}/s)",
                        end="",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        journal.close()
    print(file=sys.stderr)
    build_seconds = time.perf_counter() - started
    journal_files = sorted((data_dir / JOURNAL_DIR).glob("*.journal"))
    manifest = {
        "params": params,
        "durability_while_building": Durability.NONE.value,
        "workload": workload.describe() | {"setup_commands": setup_len},
        "engine_build": ENGINE_BUILD,
        "generate_seconds": round(generate_seconds, 3),
        "build_seconds": round(build_seconds, 3),
        "last_seq": seq,
        "last_ts": ts,
        "final_state_hash": engine.state_hash(),
        "snapshot_seq": snapshot_seq,
        "snapshot_state_hash": snapshot_hash,
        "snapshot_body_bytes": snapshot_bytes,
        "journal_segments": len(journal_files),
        "journal_bytes": sum(p.stat().st_size for p in journal_files),
    }
    (data_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def prepare(args: argparse.Namespace) -> tuple[Path, dict[str, Any], bool]:
    """The data directory, its manifest, and whether it was reused."""
    params = build_params(args)
    data_dir: Path = args.dir if args.dir is not None else Path(tempfile.mkdtemp(prefix="recov-"))
    manifest_path = data_dir / MANIFEST
    if manifest_path.is_file():
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        if manifest["params"] != params:
            raise SystemExit(
                f"{data_dir} was built with {manifest['params']}, not {params}: "
                "use another --dir or matching options"
            )
        print(f"reusing the data directory built with {params}", file=sys.stderr)
        return data_dir, manifest, True
    if data_dir.exists() and any(data_dir.iterdir()):
        raise SystemExit(f"{data_dir} is not empty and has no {MANIFEST}; refusing to touch it")
    data_dir.mkdir(parents=True, exist_ok=True)
    return data_dir, build(data_dir, params), False


def warm(data_dir: Path) -> None:
    for path in data_dir.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                while handle.read(1 << 24):
                    pass


# -- measurements (each in its own process) --------------------------------------------------


def measure(kind: str, data_dir: Path) -> dict[str, Any]:
    journal_dir = data_dir / JOURNAL_DIR
    gc.set_threshold(*GC_THRESHOLDS)  # as `crossbook serve` recovers
    out: dict[str, Any] = {"kind": kind, "engine_build": ENGINE_BUILD, "gc": GC_THRESHOLDS}
    cpu_started = time.process_time()
    started = time.perf_counter()
    if kind == "full":
        engine, state = full_replay(journal_dir, Exchange)
        out["seconds"] = time.perf_counter() - started
        hashed = time.perf_counter()
        out["state_hash"] = engine.state_hash()
        out["state_hash_seconds"] = time.perf_counter() - hashed
        out["records"] = out["replayed"] = state.records
    elif kind == "snapshot":
        engine, journal, _, recovery = recover_directory(data_dir, durability=Durability.NONE)
        out["seconds"] = time.perf_counter() - started
        journal.close()
        out["state_hash"] = recovery.state_hash
        out["records"] = recovery.journal_records
        out["replayed"] = recovery.replayed
        out["snapshot_seq"] = recovery.snapshot_seq
        out["restore_and_tail_seconds"] = recovery.seconds
        out["skipped_snapshots"] = recovery.skipped_snapshots
        hashed = time.perf_counter()
        engine.state_hash()
        out["state_hash_seconds"] = time.perf_counter() - hashed
    elif kind == "scan":
        state = scan_journal(journal_dir, repair=False)
        out["seconds"] = time.perf_counter() - started
        out["records"] = state.records
    elif kind == "decode":
        state = scan_journal(journal_dir, repair=False, apply=_discard)
        out["seconds"] = time.perf_counter() - started
        out["records"] = state.records
    else:
        raise SystemExit(f"unknown measurement {kind!r}")
    out["cpu_seconds"] = time.process_time() - cpu_started
    out["records_per_s"] = round(out["records"] / out["seconds"])
    return out


def _discard(seq: int, ts: int, command: Command) -> None:
    pass


def run_child(kind: str, data_dir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--measure", kind, "--dir", str(data_dir)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - started
    return result


# -- report ------------------------------------------------------------------------------------


def machine(data_dir: Path) -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(
                (
                    line.split(":", 1)[1].strip()
                    for line in cpuinfo
                    if line.startswith("model name")
                ),
                "",
            )
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "platform": platform.platform(),
        "processor": model or platform.processor(),
        "cpus": os.cpu_count(),
        "memory_gib": round(memory / 2**30, 1),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "filesystem": filesystem(data_dir),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def filesystem(path: Path) -> str:
    best, kind = "", "unknown"
    resolved = str(path.resolve())
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                fields = line.split()
                if resolved.startswith(fields[1]) and len(fields[1]) > len(best):
                    best, kind = fields[1], fields[2]
    except OSError:
        pass
    return kind


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = [r["seconds"] for r in runs]
    best = min(runs, key=lambda r: r["seconds"])
    summary = {
        "seconds": round(statistics.median(seconds), 3),
        "seconds_min": round(min(seconds), 3),
        "seconds_max": round(max(seconds), 3),
        "records": best["records"],
        "records_per_s": round(best["records"] / statistics.median(seconds)),
        "process_seconds": round(statistics.median(r["process_seconds"] for r in runs), 3),
        "cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in runs), 3),
    }
    for key in ("replayed", "snapshot_seq", "skipped_snapshots"):
        if key in best:
            summary[key] = best[key]
    for key in ("state_hash_seconds", "restore_and_tail_seconds"):
        if key in best:
            summary[key] = round(statistics.median(r[key] for r in runs), 3)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commands", type=int, default=1_000_000, help="journal records")
    parser.add_argument("--symbols", type=int, default=1)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--snapshot-at", type=float, default=0.9, help="fraction of records")
    parser.add_argument("--repeat", type=int, default=1, help="processes per measurement")
    parser.add_argument("--dir", type=Path, help="data directory to build or reuse")
    parser.add_argument("--measure", choices=KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.measure is not None:
        print(json.dumps(measure(args.measure, args.dir)))
        return

    temporary = args.dir is None
    data_dir, manifest, reused = prepare(args)
    try:
        info = machine(data_dir)
        warm(data_dir)
        print(
            f"engine build: {ENGINE_BUILD}, Python {info['python']}, "
            f"{manifest['last_seq']:,} records, snapshot at seq {manifest['snapshot_seq']:,}",
            flush=True,
        )
        results: dict[str, Any] = {}
        hashes: dict[str, str] = {"build": manifest["final_state_hash"]}
        for kind in KINDS:
            runs = [run_child(kind, data_dir) for _ in range(args.repeat)]
            if any(r["engine_build"] != ENGINE_BUILD for r in runs):
                raise SystemExit("a measuring process loaded a different engine build")
            for index, run in enumerate(runs):
                if "state_hash" in run:
                    hashes[f"{kind}#{index}"] = run["state_hash"]
            results[kind] = summary = summarize(runs)
            extra = f" (CPU {summary['cpu_seconds']:.3f} s)"
            if "state_hash_seconds" in summary:
                extra += f" (+ state hash {summary['state_hash_seconds']:.3f} s)"
            if "restore_and_tail_seconds" in summary:
                extra += (
                    f"; restore + {summary['replayed']:,} tail records + hash "
                    f"{summary['restore_and_tail_seconds']:.3f} s"
                )
            print(
                f"{kind:>9}: {summary['seconds']:8.3f} s  {summary['records_per_s']:>10,} "
                f"records/s{extra}",
                flush=True,
            )
        same = len(set(hashes.values())) == 1
        print(f"state hashes {'agree' if same else 'DIFFER'}: {hashes['build'][:16]}...")
        out = {
            "benchmark": "recovery",
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": info,
            "engine_build": ENGINE_BUILD,
            "gc": "on",
            "seed": args.seed,
            "records": manifest["last_seq"],
            "params": manifest["params"],
            "build": {k: manifest[k] for k in BUILD_KEYS} | {"reused": reused},
            "page_cache": "warm (files read once before measuring)",
            "processes": "one fresh Python process per measurement; seconds timed inside it",
            "repeat": args.repeat,
            "state_hashes_agree": same,
            "state_hashes": hashes,
            "results": results,
            "goals_seconds": {"full": 5.0, "snapshot": 3.0},
        }
        results_dir = Path(__file__).resolve().parent / "results"
        results_dir.mkdir(exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
        path = results_dir / f"recovery-{stamp}.json"
        path.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {path.relative_to(results_dir.parent.parent)}")
        if not same:
            raise SystemExit("state hashes differ")
    finally:
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
