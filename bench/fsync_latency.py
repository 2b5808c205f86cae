"""The disk's floor under durable acknowledgement: `fdatasync` after an append, by size.

    python bench/fsync_latency.py [--count 300] [--sizes 4096,32768,150000] [--dir DIR]

Appends `size` bytes to a fresh file in DIR (default: the system temporary directory, where
the other benchmarks put their data directories) and times `os.fdatasync` alone, `--count`
times per size: what a journal commit costs the disk, without the sequencer around it.
Writes bench/results/fsync-<utc>.json with the machine and load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def measure(directory: str, size: int, count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        fd = os.open(Path(tmp) / "journal", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            payload = b"\0" * size
            samples = []
            for _ in range(count):
                os.write(fd, payload)
                start = time.perf_counter_ns()
                os.fdatasync(fd)
                samples.append((time.perf_counter_ns() - start) / 1e6)
        finally:
            os.close(fd)
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
    args = parser.parse_args()
    rows = {}
    for size in (int(s) for s in args.sizes.split(",")):
        rows[size] = measure(args.dir, size, args.count)
        print(f"fdatasync after a {size:>7,} B append: " + ", ".join(
            f"{k[:-3]} {v:.2f} ms" for k, v in rows[size].items()))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"fsync-{stamp}.json"
    out.write_text(json.dumps({
        "count": args.count, "results_by_size": rows,
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "load_average": [round(x, 2) for x in os.getloadavg()]},
    }, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
