"""A node under load, for crash tests: recover DATA_DIR, then submit the seeded flow forever.

    python crash_driver.py DATA_DIR ACKS_FILE --seed N [--clients 32] [--snapshot-every 500]
                           [--durability fsync] [--fsize-limit BYTES]

After recovery it prints one line `ready <json>` (the `Recovery` report). Each acknowledged
command is appended to ACKS_FILE as `seq crc32(command msgpack)` only after its future
resolved, i.e. after it was durable: every line there must be in the journal after a crash.
With `--fsize-limit` the process runs under RLIMIT_FSIZE, so the journal's write eventually
fails with EFBIG (a real kernel write error); the driver then prints `unhealthy <last_seq>`
and exits with status 3.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import sys
import zlib
from pathlib import Path

import msgspec

from crossbook.domain.commands import Command
from crossbook.journal.core import open_core
from crossbook.journal.file import Durability
from crossbook.sequencer.loop import SequencerConfig, Unavailable
from crossbook.sequencer.workload import order_flow, setup_commands

SYMBOLS, ACCOUNTS = 3, 8


def fingerprint(command: Command) -> int:
    return zlib.crc32(msgspec.msgpack.encode(command))


async def main(args: argparse.Namespace) -> int:
    config = SequencerConfig(
        snapshot_every=args.snapshot_every or None, snapshot_interval=None, inbox_size=4096
    )
    core = await open_core(
        Path(args.data_dir),
        durability=Durability(args.durability),
        config=config,
        segment_bytes=args.segment_bytes,
    )
    print("ready", msgspec.json.encode(core.recovery).decode(), flush=True)
    acks = os.open(args.acks, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    submit = core.sequencer.submit
    if core.recovery.last_seq == 0:
        for command in setup_commands(SYMBOLS, ACCOUNTS):
            applied = await submit(command)
            os.write(acks, f"{applied.seq} {fingerprint(command)}\n".encode())
    flow = order_flow(args.seed, SYMBOLS, ACCOUNTS)

    async def client() -> None:
        while True:
            command = next(flow)
            applied = await submit(command)
            os.write(acks, f"{applied.seq} {fingerprint(command)}\n".encode())

    try:
        await asyncio.gather(*(client() for _ in range(args.clients)))
    except Unavailable:
        print("unhealthy", core.sequencer.last_seq, repr(core.sequencer.failure), flush=True)
        return 3
    return 0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("data_dir")
    parser.add_argument("acks")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--snapshot-every", type=int, default=500)
    parser.add_argument("--segment-bytes", type=int, default=256 * 1024)
    parser.add_argument("--durability", default="fsync")
    parser.add_argument("--fsize-limit", type=int, default=0)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse(sys.argv[1:])
    if arguments.fsize_limit:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (arguments.fsize_limit, arguments.fsize_limit))
    sys.exit(asyncio.run(main(arguments)))
