"""Sink benchmark: CPU per command of everything a node does with a durable batch.

    python bench/sinks.py [--commands N] [--batch B] [--repeat R] [--seed S] [--symbols K]

After the journal's group commit the sequencer hands each batch to its sinks on the event
loop thread, so their cost adds to the engine's on every order path. This runs the engine
once over `crossbook.sequencer.workload.order_flow` (the sequencer benchmark's workload),
cuts the result into batches of B commands (stamps 1 ms apart, as under load), and then
times each stage alone over all batches, R times with fresh state:

- `journal encode`: framing every command into the journal's write buffer (no write);
- `gateway views`: the REST read models (orders, fills, balances, keys);
- `market data`: L2 books, trades, aggTrades, tickers and candles of every interval;
- `ws publisher`: market data plus the WebSocket fan-out with no subscriber (what a node
  with `--ws` pays before anyone subscribes);
- `binary reports`: execution reports for every event, each account followed by one binary
  session (the reports are encoded, stamped and kept for resend; no socket);
- `history rows`: the projector's row builder (the database write is not included).

Output: median microseconds per command per stage with the spread, written with the
machine, workload and seed to bench/results/sinks-<utc>.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from crossbook.domain.enums import Permission
from crossbook.engine.exchange import Exchange
from crossbook.gateway.binary.reports import ReportRouter
from crossbook.gateway.binary.sessions import SessionRegistry
from crossbook.gateway.views import GatewayViews, KeyRecord
from crossbook.gateway.ws.fanout import Hub
from crossbook.gateway.ws.publisher import Publisher
from crossbook.gateway.ws.user import UserEvents
from crossbook.history.rows import State, build
from crossbook.journal.format import RecordEncoder
from crossbook.marketdata.views import MarketData
from crossbook.sequencer.ports import Applied
from crossbook.sequencer.workload import order_flow, setup_commands

Batches = list[list[Applied]]
Stage = Callable[[], Callable[[Sequence[Applied]], object]]


def record(commands: int, batch: int, seed: int, symbols: int) -> tuple[Batches, Batches]:
    """The setup batch and the flow's batches, as the sequencer would hand them to sinks."""
    engine, seq, ts = Exchange(), 0, 1_700_000_000_000_000_000

    def run(chunk: list[object]) -> list[Applied]:
        nonlocal seq
        out = []
        for command in chunk:
            seq += 1
            out.append(Applied(seq, ts, command, engine.apply(seq, ts, command)))  # type: ignore[arg-type]
        return out

    setup = [run(list(setup_commands(symbols)))]
    flow = list(itertools.islice(order_flow(seed, symbols), commands))
    batches = []
    for start in range(0, len(flow), batch):
        ts += 1_000_000
        batches.append(run(flow[start : start + batch]))
    return setup, batches


def _journal() -> Callable[[Sequence[Applied]], object]:
    encoder, buffer = RecordEncoder(), bytearray()

    def sink(batch: Sequence[Applied]) -> None:
        buffer.clear()
        for applied in batch:
            encoder.frame_into(buffer, applied.seq, applied.ts, applied.command)

    return sink


def _views() -> Callable[[Sequence[Applied]], object]:
    return GatewayViews().on_batch


def _market() -> Callable[[Sequence[Applied]], object]:
    return MarketData().on_batch


def _publisher() -> Callable[[Sequence[Applied]], object]:
    views = GatewayViews()
    hub = Hub()
    publisher = Publisher(hub, MarketData(), views, UserEvents(hub, views))

    def sink(batch: Sequence[Applied]) -> None:
        views.on_batch(batch)
        publisher.on_batch(batch)

    return sink


def _reports() -> Callable[[Sequence[Applied]], object]:
    registry = SessionRegistry()
    for account in range(1, 11):  # the workload's accounts
        registry.open(KeyRecord(f"key-{account}", b"", account, Permission.TRADE), 0)
    return ReportRouter(registry).on_batch


def _history() -> Callable[[Sequence[Applied]], object]:
    state = State()
    return lambda batch: build(batch, state)


STAGES: dict[str, Stage] = {
    "journal encode": _journal,
    "gateway views": _views,
    "market data": _market,
    "ws publisher (incl. views)": _publisher,
    "binary reports": _reports,
    "history rows": _history,
}


def time_stage(stage: Stage, setup: Batches, batches: Batches) -> float:
    sink = stage()
    for batch in setup:
        sink(batch)
    started = time.perf_counter()
    for batch in batches:
        sink(batch)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--symbols", type=int, default=1)
    parser.add_argument("--only", nargs="*", choices=list(STAGES), metavar="STAGE",
                        help="time only these stages (none: just build the batches, for "
                        "instruction counts under a profiler)")
    args = parser.parse_args()
    stages = STAGES if args.only is None else {name: STAGES[name] for name in args.only}
    setup, batches = record(args.commands, args.batch, args.seed, args.symbols)
    commands = sum(len(b) for b in batches)
    events = sum(len(a.events) for b in batches for a in b)
    print(f"{commands:,} commands, {events:,} events, batches of {args.batch}")
    results = {}
    for name, stage in stages.items():
        runs = [time_stage(stage, setup, batches) * 1e6 / commands for _ in range(args.repeat)]
        results[name] = {
            "us_per_command": round(statistics.median(runs), 3),
            "runs": [round(r, 3) for r in runs],
        }
        print(f"{name:>28}: {statistics.median(runs):6.2f} us/command "
              f"[{min(runs):.2f}-{max(runs):.2f}]", flush=True)
    if not results:
        return  # batches built for a profiler's baseline: nothing to record
    out = {
        "benchmark": "sinks",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load": os.getloadavg(),
        },
        "workload": {"name": f"flow-{args.symbols}sym", "seed": args.seed,
                     "commands": commands, "events": events, "batch": args.batch},
        "results": results,
    }
    results_dir = Path(__file__).resolve().parent / "results"
    results_dir.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%S")
    (results_dir / f"sinks-{stamp}.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
