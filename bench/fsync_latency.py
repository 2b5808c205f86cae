"""The disk's floor under durable acknowledgement: `fdatasync` after an append, by size.

    python bench/fsync_latency.py [--count 300] [--sizes 4096,32768,150000] [--dir DIR]
                                  [--modes append,prezeroed] [--neighbours none,sqlite]

Writes `size` bytes to a fresh file in DIR (default: the system temporary directory, where
the other benchmarks put their data directories) and times `os.fdatasync` alone, `--count`
times per size: what a journal commit costs the disk, without the sequencer around it.

- mode `append`: each write extends the file (what the journal does), so each sync also
  commits the file system's metadata (the new size and blocks);
- mode `prezeroed`: the file is written with zeros and synced first, then overwritten in
  place, so a sync flushes data only (what databases do with preallocated log segments).

- neighbour `none`: nothing else writes;
- neighbour `sqlite`: another process writes to a SQLite database in the same directory the
  way a node's history process does (WAL, `synchronous=NORMAL`, a transaction of 500 rows
  with three indexes every 25 ms, automatic checkpoints): shows how much a co-located
  writer's flushes stretch the journal's syncs.

Writes bench/results/fsync-<utc>.json with the machine and load average.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from multiprocessing.synchronize import Event
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def sqlite_neighbour(path: str, stop: Event, ready: Event) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE rows (seq INTEGER PRIMARY KEY, account INTEGER, symbol TEXT, "
               "ts INTEGER, body TEXT)")
    db.execute("CREATE INDEX rows_account ON rows (account, ts)")
    db.execute("CREATE INDEX rows_symbol ON rows (symbol, ts)")
    seq = 0
    ready.set()
    while not stop.is_set():
        rows = [(seq + i, (seq + i) % 97, f"S{(seq + i) % 7}-USDT", time.time_ns(), "x" * 80)
                for i in range(500)]
        seq += 500
        db.execute("BEGIN")
        db.executemany("INSERT INTO rows VALUES (?, ?, ?, ?, ?)", rows)
        db.execute("COMMIT")
        time.sleep(0.025)
    db.close()


def measure(directory: str, size: int, count: int, mode: str) -> dict[str, float]:
    path = Path(directory) / f"journal-{size}-{mode}"
    payload = b"\1" * size
    samples = []
    if mode == "prezeroed":
        with path.open("wb") as handle:
            handle.write(b"\0" * (size * count))
            handle.flush()
            os.fsync(handle.fileno())
        fd = os.open(path, os.O_WRONLY)
    else:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for i in range(count):
            if mode == "prezeroed":
                os.pwrite(fd, payload, i * size)
            else:
                os.write(fd, payload)
            start = time.perf_counter_ns()
            os.fdatasync(fd)
            samples.append((time.perf_counter_ns() - start) / 1e6)
    finally:
        os.close(fd)
        path.unlink()
    samples.sort()

    def at(q: float) -> float:
        return round(samples[min(len(samples) - 1, int(q * len(samples)))], 3)

    return {"p50_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99),
            "max_ms": round(samples[-1], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--sizes", default="4096,32768,150000")
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument("--modes", default="append,prezeroed")
    parser.add_argument("--neighbours", default="none,sqlite")
    args = parser.parse_args()
    rows: dict[str, dict[str, float]] = {}
    ctx = mp.get_context("spawn")
    for neighbour in args.neighbours.split(","):
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            stop, ready = ctx.Event(), ctx.Event()
            proc = None
            if neighbour == "sqlite":
                proc = ctx.Process(target=sqlite_neighbour, daemon=True,
                                   args=(str(Path(tmp) / "history.sqlite"), stop, ready))
                proc.start()
                ready.wait(30)
                time.sleep(1.0)  # let its WAL grow to a checkpoint or two
            elif neighbour != "none":
                raise SystemExit(f"unknown neighbour {neighbour!r}")
            try:
                for mode in args.modes.split(","):
                    for size in (int(s) for s in args.sizes.split(",")):
                        key = f"{mode} {size} B, neighbour {neighbour}"
                        rows[key] = measure(tmp, size, args.count, mode)
                        print(f"fdatasync, {key:>38}: " + ", ".join(
                            f"{k[:-3]} {v:.2f} ms" for k, v in rows[key].items()), flush=True)
            finally:
                stop.set()
                if proc is not None:
                    proc.join(30)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"fsync-{stamp}.json"
    out.write_text(json.dumps({
        "count": args.count, "results": rows,
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "load_average": [round(x, 2) for x in os.getloadavg()]},
    }, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
