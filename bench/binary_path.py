"""Binary order path in one process: CPU per order of everything the node's loop does for it.

    python bench/binary_path.py [--commands N] [--chunk C] [--repeat R] [--seed S] [--dry]

What a binary order costs the node's main thread, without sockets or a disk: request frames
of `crossbook.sequencer.workload.order_flow` (NewOrder and Cancel, one connection per
account) are fed to `BinaryConnection.data_received`, `C` frames per connection at a time;
the sequencer (the real engine, a journal that keeps nothing) drains them as one batch,
applies it, resolves the futures and runs the node's sinks for the binary path: gateway
views, market data, binary reports (encoded, stamped, kept for resend and queued on the
connection, whose transport only counts bytes). The next chunk goes in once the batch is
through, so batches hold about `C` times the accounts commands, as under pipelined load.

The clock is a counter, so the run is deterministic: `--dry` builds the same frames and
state and feeds nothing, for instruction counts under a profiler (the difference between a
run and a dry run is the order path):

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python bench/binary_path.py --commands 5000 --repeat 1 [--dry]

Output: CPU microseconds per command (`time.process_time`, all threads), median of R runs
with fresh state, on stdout only.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import time
from collections.abc import Sequence
from typing import cast

from crossbook.domain.commands import CancelOrder, Command, PlaceOrder
from crossbook.domain.enums import Permission
from crossbook.engine.exchange import Exchange
from crossbook.gateway.binary.server import BinaryConnection, BinaryServer
from crossbook.gateway.views import GatewayViews, KeyRecord
from crossbook.marketdata.views import MarketData
from crossbook.protocol.binary import encode
from crossbook.protocol.binary_messages import Cancel, NewOrder
from crossbook.sequencer.loop import Sequencer
from crossbook.sequencer.ports import Applied
from crossbook.sequencer.workload import order_flow, setup_commands

ACCOUNTS = 10


class NullJournal:
    def append(self, seq: int, ts: int, command: Command) -> None:
        pass

    def commit(self) -> None:
        pass


class CounterClock:
    def __init__(self) -> None:
        self.ns = 1_700_000_000_000_000_000

    def now_ns(self) -> int:
        self.ns += 1_000_000
        return self.ns


class CountingTransport:
    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class Through:
    """A sink that wakes the feeder once the batch holding seq `target` has been through."""

    def __init__(self) -> None:
        self.target = 0
        self.done = asyncio.Event()

    def on_batch(self, batch: Sequence[Applied]) -> None:
        if batch and batch[-1].seq >= self.target:
            self.done.set()


def frames(commands: list[Command]) -> dict[int, list[bytes]]:
    """Each account's request frames, in flow order."""
    out: dict[int, list[bytes]] = {account: [] for account in range(1, ACCOUNTS + 1)}
    for request_id, command in enumerate(commands, 1):
        if isinstance(command, PlaceOrder):
            message: NewOrder | Cancel = NewOrder(
                request_id, command.symbol, command.side, command.type, command.qty,
                command.price, command.tif, client_order_id=command.client_order_id,
            )
        else:
            assert isinstance(command, CancelOrder)
            message = Cancel(request_id, command.symbol, client_order_id=command.client_order_id)
        out[command.account].append(encode(message))
    return out


async def run(flow: dict[int, list[bytes]], chunk: int, dry: bool) -> tuple[float, int]:
    engine = Exchange()
    views, market = GatewayViews(), MarketData()
    sequencer = Sequencer(engine, NullJournal(), clock=CounterClock(), sinks=[views, market])
    sequencer.start()
    for command in setup_commands(1, ACCOUNTS):
        await sequencer.submit(command)
    server = BinaryServer(sequencer, views.keys)
    sequencer.add_sink(server.router)
    through = Through()
    sequencer.add_sink(through)
    connections = []
    for account in range(1, ACCOUNTS + 1):
        key = KeyRecord(f"key-{account}", b"", account, Permission.TRADE)
        views.keys[key.key] = key
        connection = BinaryConnection(server)
        connection.connection_made(cast(asyncio.Transport, CountingTransport()))
        session = server.registry.open(key, 0)
        session.outbox = connection
        connection.session = session
        connections.append((connection, flow[account]))
    total = 0 if dry else sum(len(f) for f in flow.values())
    started = time.process_time()
    for start in range(0, max(len(f) for f in flow.values()) if not dry else 0, chunk):
        through.target = sequencer.last_seq
        through.done.clear()
        for connection, requests in connections:
            part = requests[start : start + chunk]
            if part:
                connection.data_received(b"".join(part))
                through.target += len(part)
        await through.done.wait()
        await asyncio.sleep(0)  # the connections' flushes
    elapsed = time.process_time() - started
    await sequencer.stop()
    return elapsed, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=32, help="frames per connection per read")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dry", action="store_true", help="build everything, feed nothing")
    args = parser.parse_args()
    flow = frames(list(itertools.islice(order_flow(args.seed, 1, ACCOUNTS), args.commands)))
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    runs = []
    for _ in range(args.repeat):
        elapsed, total = runner(run(flow, args.chunk, args.dry))
        if total:
            runs.append(elapsed * 1e6 / total)
    if runs:
        print(f"binary path: {statistics.median(runs):.2f} us/command "
              f"[{min(runs):.2f}-{max(runs):.2f}] over {args.commands:,} commands, "
              f"chunks of {args.chunk} per connection")


if __name__ == "__main__":
    main()
