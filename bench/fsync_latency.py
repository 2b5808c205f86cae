"""The disk's floor under durable acknowledgement: `fdatasync` after an append, by size.

    python bench/fsync_latency.py [--count 300] [--sizes 4096,32768,150000] [--dir DIR]
                                  [--modes append,prezeroed] [--neighbours none,sqlite]
                                  [--rounds 1]

Writes `size` bytes to a fresh file in DIR (default: the system temporary directory, where
the other benchmarks put their data directories) and times `os.fdatasync` alone, `--count`
times per size: what a journal commit costs the disk, without the sequencer around it.

- mode `append`: each write extends the file (what the journal does), so each sync also
  commits the file system's metadata (the new size and blocks);
- mode `prezeroed`: the file is written with zeros and synced first, then overwritten in
  place, so a sync flushes data only (what databases do with preallocated log segments).

- mode `journal`: crossbook's own `FileJournal.commit` (records of about 100 bytes, `size`
  bytes a commit), two journals side by side with their commits interleaved, one
  preallocating its segment between commits (`prepare`, as the sequencer's commit thread
  does) and one only appending: the same disk conditions for both.

- neighbour `none`: nothing else writes;
- neighbour `sqlite`: another process writes to a SQLite database in the same directory the
  way a node's history process does (WAL, `synchronous=NORMAL`, a transaction of 500 rows
  with three indexes every 25 ms, automatic checkpoints): shows how much a co-located
  writer's flushes stretch the journal's syncs;
- neighbour `sqlite-off`: the same with `synchronous=OFF` (no sync at checkpoints either);
- neighbour `sqlite-idle`: the same as `sqlite` with the writer in the idle I/O priority
  class (`ioprio_set`, what `ionice -c3` does);
- neighbour `sqlite-nocheckpoint`: the same as `sqlite` with automatic checkpoints off (the
  WAL only grows: what the journal's sync pays for the WAL's appends alone).

`--rounds N` repeats the whole set N times, neighbours alternating, so a busy disk's drift
shows as spread between rounds rather than as a difference between neighbours.

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


_IOPRIO_SET = {"x86_64": 251, "aarch64": 30}  # the system call's number (no libc wrapper)
_IOPRIO_IDLE = 3 << 13  # IOPRIO_PRIO_VALUE(IOPRIO_CLASS_IDLE, 0)


def lower_io_priority() -> None:
    """The calling thread, and the threads it starts afterwards, in the idle I/O class."""
    import ctypes  # (only this neighbour)

    number = _IOPRIO_SET[os.uname().machine]
    if ctypes.CDLL(None, use_errno=True).syscall(number, 1, 0, _IOPRIO_IDLE) != 0:
        raise OSError(ctypes.get_errno(), "ioprio_set")


def sqlite_neighbour(path: str, variant: str, stop: Event, ready: Event) -> None:
    if variant == "idle":
        lower_io_priority()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=" + ("OFF" if variant == "off" else "NORMAL"))
    if variant == "nocheckpoint":
        db.execute("PRAGMA wal_autocheckpoint=0")
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
    return summarise(samples)


def measure_journal(directory: str, size: int, count: int) -> dict[str, dict[str, float]]:
    from crossbook.domain.commands import Deposit  # (only this mode)
    from crossbook.domain.values import AccountId, Units
    from crossbook.journal.file import open_journal

    journals = {name: open_journal(Path(directory) / f"journal-{name}")[0]
                for name in ("preallocated", "appended")}
    samples: dict[str, list[float]] = {name: [] for name in journals}
    per_commit = max(1, size // 100)
    seq = 0
    try:
        for i in range(count):
            seq += per_commit
            order = list(journals.items())
            for name, journal in order if i % 2 else order[::-1]:
                for n in range(seq - per_commit + 1, seq + 1):
                    journal.append(n, n, Deposit(AccountId(n % 97), "USDT", Units(n), f"tx{n}"))
                start = time.perf_counter_ns()
                journal.commit()
                samples[name].append((time.perf_counter_ns() - start) / 1e6)
                if name == "preallocated":
                    journal.prepare()
    finally:
        for journal in journals.values():
            journal.close()
    return {name: summarise(values) for name, values in samples.items()}


def summarise(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)

    def at(q: float) -> float:
        return round(samples[min(len(samples) - 1, int(q * len(samples)))], 3)

    return {"p50_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99),
            "max_ms": round(samples[-1], 3),
            "mean_ms": round(sum(samples) / len(samples), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--sizes", default="4096,32768,150000")
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument("--modes", default="append,prezeroed")
    parser.add_argument("--neighbours", default="none,sqlite")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    rows: dict[str, dict[str, float]] = {}
    ctx = mp.get_context("spawn")
    for neighbour in args.neighbours.split(",") * args.rounds:
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            stop, ready = ctx.Event(), ctx.Event()
            proc = None
            if neighbour.startswith("sqlite"):
                variant = neighbour.partition("-")[2]
                proc = ctx.Process(target=sqlite_neighbour, daemon=True,
                                   args=(str(Path(tmp) / "history.sqlite"), variant, stop, ready))
                proc.start()
                ready.wait(30)
                time.sleep(1.0)  # let its WAL grow to a checkpoint or two
            elif neighbour != "none":
                raise SystemExit(f"unknown neighbour {neighbour!r}")
            try:
                for mode in args.modes.split(","):
                    for size in (int(s) for s in args.sizes.split(",")):
                        found = ({f"journal {name}": row for name, row in
                                  measure_journal(tmp, size, args.count).items()}
                                 if mode == "journal" else
                                 {mode: measure(tmp, size, args.count, mode)})
                        for name, row in found.items():
                            key = f"{name} {size} B, neighbour {neighbour}"
                            key += f", round {sum(k.startswith(key + ',') for k in rows) + 1}"
                            rows[key] = row
                            print(f"fdatasync, {key:>62}: " + ", ".join(
                                f"{k[:-3]} {v:.2f} ms" for k, v in row.items()), flush=True)
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
