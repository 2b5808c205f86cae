"""Engine benchmark: the matching core alone and the full `Exchange.apply`.

    python bench/engine_throughput.py [--commands N] [--repeat R] [--seed S]
    python bench/engine_throughput.py --phase setup|apply|core [--symbols K] [--commands N]

Workload: bench/workload.py `engine_mix` (about 60% limit, 30% cancel, 10% market, ~2,000
resting orders), one symbol and ten. Commands are built before timing; GC stays on, with the
prepared workload and exchange frozen out of the collector first (as the node freezes its
start-up state), so collections during a run traverse what the run allocated, not the workload.
Throughput: R timed runs over the whole list, median and spread reported. Latency: one more
run timing each command with perf_counter_ns (the timer's own cost is included, so these
percentiles are slightly pessimistic). Writes bench/results/engine-<utc>.json.

Instructions per command (steadier than wall time on a shared machine): `--phase` builds the
same workload and exchange and then, for `apply` or `core`, runs the commands once, untimed;
the difference between a `setup` run and an `apply` (or `core`) run under
`valgrind --tool=callgrind`, divided by N, is what one command costs. The pass starts with the
workload frozen out of the collector (as the node freezes its start-up state), so a full
collection over the prepared commands does not land in one phase and not the other.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crossbook.domain import commands as cmd
from crossbook.domain.enums import OrderType, Side
from crossbook.engine import exchange as exchange_module
from crossbook.engine.book import Book, Reporter
from crossbook.engine.exchange import Exchange
from crossbook.engine.order import Order
from workload import Workload, engine_mix

ENGINE_BUILD = "mypyc" if (exchange_module.__file__ or "").endswith(".so") else "python"


def fresh(w: Workload) -> Exchange:
    ex = Exchange()
    for i, c in enumerate(w.setup, 1):
        ex.apply(i, i, c)
    return ex


@contextmanager
def frozen() -> Iterator[None]:
    """Everything allocated so far out of the collector's way for the block (GC stays on)."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def run_exchange(w: Workload) -> float:
    ex = fresh(w)
    apply = ex.apply
    seq = len(w.setup)
    with frozen():
        t0 = time.perf_counter()
        for c in w.commands:
            seq += 1
            apply(seq, seq, c)
        return time.perf_counter() - t0


def latencies_exchange(w: Workload) -> list[int]:
    ex = fresh(w)
    apply = ex.apply
    clock = time.perf_counter_ns
    seq = len(w.setup)
    out = []
    with frozen():
        for c in w.commands:
            seq += 1
            t0 = clock()
            apply(seq, seq, c)
            out.append(clock() - t0)
    return out


def core_ops(w: Workload) -> list[tuple[int, object]]:
    """The workload as bare book operations: (0, Order) place, (1, order_id) cancel."""
    ops: list[tuple[int, object]] = []
    next_id = 1
    for c in w.commands:
        if isinstance(c, cmd.PlaceOrder):
            ops.append((0, (next_id, c)))
            next_id += 1
        elif isinstance(c, cmd.CancelOrder):
            ops.append((1, c.order_id))
    return ops


# One book operation, prepared before timing: (PLACE, order, its book, id, (order, book)) or
# (CANCEL, None, None, id, None). The timed loop makes one book call per operation: `Book.place`
# (match, then rest what a limit order has left) or `Book.cancel` of the order the id names,
# if it still rests; the id map stands for the order index an exchange keeps.
CoreOp = tuple[int, Order | None, Book | None, int, tuple[Order, Book] | None]
PLACE, CANCEL = 0, 1


def run_core(w: Workload, ops: list[tuple[int, object]]) -> float:
    prepared = prepare_core(w, ops)
    with frozen():
        return time_core(prepared)


def prepare_core(w: Workload, ops: list[tuple[int, object]]) -> list[CoreOp]:
    books = {c.instrument.symbol: Book(c.instrument.symbol) for c in w.setup
             if isinstance(c, cmd.AddInstrument)}  # fmt: skip
    prepared: list[CoreOp] = []
    for kind, payload in ops:
        if kind == 0:
            oid, c = payload  # type: ignore[misc]
            # a market order's price is 0: `Book.place` takes it as no limit
            price = c.price if c.type is OrderType.LIMIT else 0
            o = Order(oid, c.account, c.symbol, c.side, c.type, c.qty, price, c.tif, 0, 0, 0,
                      False, 0, c.stp, "")  # fmt: skip
            book = books[c.symbol]
            prepared.append((PLACE, o, book, oid, (o, book)))
        else:
            prepared.append((CANCEL, None, None, payload, None))  # type: ignore[arg-type]
    return prepared


def time_core(prepared: list[CoreOp]) -> float:
    resting: dict[int, tuple[Order, Book]] = {}
    noop = Reporter()  # ignores the steps
    t0 = time.perf_counter()
    for kind, o, book, oid, entry in prepared:
        if kind == PLACE:
            if book.place(o, noop):  # type: ignore[union-attr, arg-type]
                resting[oid] = entry  # type: ignore[assignment]
        else:
            found = resting.pop(oid, None)
            if found is not None:
                found[1].cancel(found[0])
    return time.perf_counter() - t0


def phase(name: str, w: Workload) -> None:
    """One untimed pass for instruction counts: everything `setup` does, then the commands."""
    ex = fresh(w)
    prepared = prepare_core(w, core_ops(w))
    gc.collect()
    gc.freeze()
    if name == "apply":
        apply = ex.apply
        seq = len(w.setup)
        for c in w.commands:
            seq += 1
            apply(seq, seq, c)
    elif name == "core":
        time_core(prepared)


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def pct(values: list[int], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commands", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--phase", choices=("setup", "apply", "core"),
                        help="build the workload, run it once untimed (see above), no results")
    parser.add_argument("--symbols", type=int, default=1, help="with --phase")
    args = parser.parse_args()
    if args.phase:
        phase(args.phase, engine_mix(args.commands, symbols=args.symbols, seed=args.seed))
        return
    results = []
    print(f"engine build: {ENGINE_BUILD}, Python {sys.version.split()[0]}")
    for symbols in (1, 10):
        w = engine_mix(args.commands, symbols=symbols, seed=args.seed)
        ops = core_ops(w)
        core = [len(w.commands) / run_core(w, ops) for _ in range(args.repeat)]
        full = [len(w.commands) / run_exchange(w) for _ in range(args.repeat)]
        lat = latencies_exchange(w)
        row = {
            "workload": w.describe(),
            "core_cmd_per_s": spread(core),
            "apply_cmd_per_s": spread(full),
            "apply_latency_us": {
                "p50": pct(lat, 0.5),
                "p99": pct(lat, 0.99),
                "p99.9": pct(lat, 0.999),
                "max": max(lat) / 1000,
            },
        }
        results.append(row)
        print(
            f"{symbols:>2} symbol(s): core {row['core_cmd_per_s']['median']:>10,.0f} cmd/s | "
            f"apply {row['apply_cmd_per_s']['median']:>9,.0f} cmd/s "
            f"(min {min(full):,.0f} max {max(full):,.0f}) | "
            "p50 {p50:.1f} us p99 {p99:.1f} us p99.9 {p99.9:.1f} us".replace("p99.9:", "p999:")
            .format(**{k.replace(".", ""): v for k, v in row["apply_latency_us"].items()})
        )
    out = {
        "benchmark": "engine_throughput",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": __import__("os").cpu_count(), "python": sys.version.split()[0]},
        "gc": "on, prepared workload frozen",
        "engine": ENGINE_BUILD,
        "repeat": args.repeat,
        "results": results,
    }  # fmt: skip
    path = Path(__file__).parent / "results" / f"engine-{out['when'][:19].replace(':', '')}.json"
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")


_ = Side
if __name__ == "__main__":
    main()
