"""`crossbook journal verify|dump|replay DIR` and `crossbook snapshot DIR`.

DIR is a node's data directory (it holds `journal/` and `snapshots/`).

- `verify` reads everything and changes nothing: every frame's CRC and every record's seq, a
  torn tail (reported; a node cuts it on start), every snapshot checked against a full replay.
  Exit status 0 when the node would start, 1 when it would refuse (damage in the middle).
- `dump` prints records as JSON lines (`{"seq", "ts", "command"}`), from `--from` on.
- `replay` replays the whole journal and prints the state hash and the rate.
- `snapshot` recovers the directory (taking its lock, so the node must be stopped) and writes
  a snapshot at the last seq.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

from crossbook.domain.commands import Command
from crossbook.domain.values import Nanos, Seq
from crossbook.engine.exchange import Exchange
from crossbook.journal.core import JOURNAL_DIR, SNAPSHOT_DIR, recover_directory
from crossbook.journal.file import Durability
from crossbook.journal.recovery import full_replay
from crossbook.journal.segments import JournalCorrupt, iter_records, scan_journal
from crossbook.journal.snapshots import SnapshotCorrupt, SnapshotStore
from crossbook.sequencer.ports import SnapshotMeta


def register(sub: Any) -> None:
    journal: argparse.ArgumentParser = sub.add_parser("journal", help="inspect a journal")
    actions = journal.add_subparsers(dest="action", metavar="ACTION", required=True)
    verify = actions.add_parser("verify", help="check frames, seq chain and snapshots")
    verify.add_argument("dir", type=Path)
    verify.set_defaults(func=run_verify)
    dump = actions.add_parser("dump", help="print records as JSON lines")
    dump.add_argument("dir", type=Path)
    dump.add_argument("--from", dest="start", type=int, default=1, help="first seq")
    dump.add_argument("--limit", type=int, default=None, help="at most this many records")
    dump.set_defaults(func=run_dump)
    replay = actions.add_parser("replay", help="full replay: state hash and rate")
    replay.add_argument("dir", type=Path)
    replay.set_defaults(func=run_replay)
    snapshot: argparse.ArgumentParser = sub.add_parser(
        "snapshot", help="write a snapshot of a stopped node's data directory"
    )
    snapshot.add_argument("dir", type=Path)
    snapshot.set_defaults(func=run_snapshot)


def run_verify(args: argparse.Namespace) -> int:
    store = SnapshotStore(args.dir / SNAPSHOT_DIR)
    checks: dict[int, SnapshotMeta] = {}
    skipped: list[str] = []
    for path in store.paths():
        try:
            meta, _ = store.load(path)
        except (SnapshotCorrupt, msgspec.DecodeError) as exc:
            skipped.append(f"snapshot skipped: {exc}")
            continue
        checks[meta.seq] = meta
    engine = Exchange()
    compared: list[tuple[int, bool]] = []

    def apply(seq: int, ts: int, command: Command) -> None:
        engine.apply(Seq(seq), Nanos(ts), command)
        meta_at = checks.pop(seq, None)
        if meta_at is not None:
            compared.append((seq, meta_at.state_hash == engine.state_hash()))

    try:
        # One pass: every frame's CRC, every record's seq, applied as it is read.
        state = scan_journal(args.dir / JOURNAL_DIR, repair=False, apply=apply)
    except JournalCorrupt as exc:
        print(f"REFUSE: {exc}", file=sys.stderr)
        return 1
    print(f"journal: {len(state.segments)} segments, seq {state.first_seq}..{state.last_seq}")
    if state.tail is not None:
        tail = state.tail
        print(f"torn tail: {tail.path} at offset {tail.offset}, {tail.dropped_bytes} bytes "
              f"({tail.reason}); a node cuts it on start")  # fmt: skip
    for line in skipped:
        print(line)
    for seq, same in compared:
        print(f"snapshot {seq}: {'matches' if same else 'DIFFERS from'} the replay")
    for seq in checks:
        print(f"snapshot {seq}: beyond the journal, a node deletes it on start")
    print(f"state hash {engine.state_hash()}")
    return 0 if all(same for _, same in compared) else 1


def run_dump(args: argparse.Namespace) -> int:
    state = scan_journal(args.dir / JOURNAL_DIR, repair=False)
    records = iter_records(state, after_seq=max(args.start - 1, 0))
    out = sys.stdout
    for record in itertools.islice(records, args.limit):
        out.write(msgspec.json.encode(msgspec.structs.asdict(record)).decode() + "\n")
    return 0


def run_replay(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    engine, state = full_replay(args.dir / JOURNAL_DIR, Exchange)
    seconds = time.perf_counter() - started
    rate = state.records / seconds if seconds else 0.0
    print(f"replayed {state.records} records to seq {state.last_seq} in {seconds:.3f} s "
          f"({rate:,.0f}/s)")  # fmt: skip
    print(f"state hash {engine.state_hash()}")
    return 0


def run_snapshot(args: argparse.Namespace) -> int:
    engine, journal, store, recovery = recover_directory(args.dir, durability=Durability.FSYNC)
    try:
        meta = SnapshotMeta(
            seq=engine.last_seq,
            ts=recovery.last_ts,
            state_hash=engine.state_hash(),
            created_ns=time.time_ns(),
        )
        store.write(meta, engine.snapshot())
    finally:
        journal.close()
    print(f"snapshot at seq {meta.seq}, state hash {meta.state_hash}: {store.path_for(meta.seq)}")
    return 0
