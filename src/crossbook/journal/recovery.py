"""Recovery: newest valid snapshot, then the journal tail. The one way a node starts.

`recover_engine` takes a journal that `scan_journal` already validated (and repaired). It tries
snapshots newest first and uses the first one that is intact, not beyond the journal's end,
joins the journal without a gap, and restores to exactly the state hash it was saved with;
each one it passes over is reported. With none it starts from a fresh engine (a fresh start is
an empty journal). It then applies every journaled record after the snapshot's seq.

`full_replay` ignores snapshots and replays from the first record, read-only: its state hash
is the reference that `recover_engine`'s must equal (`crossbook journal replay`, crash tests).

Both fold records with the engine's `replay`: `apply`'s change of state without the events,
which nobody reads during recovery.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

import msgspec

from crossbook.domain.commands import Command
from crossbook.journal.segments import JournalState, TailDamage, iter_records, scan_journal
from crossbook.journal.snapshots import SnapshotCorrupt, SnapshotStore
from crossbook.sequencer.ports import Engine


class Replayable(Engine, Protocol):
    def replay(self, seq: int, ts: int, command: Command) -> None:
        """`apply` without building the events: what recovery folds the journal with."""


E = TypeVar("E", bound=Replayable)


class RecoveryError(Exception):
    """The journal and the engine disagree: a bug or foreign data, never silently passed."""


class Recovery(msgspec.Struct, frozen=True):
    last_seq: int
    last_ts: int
    state_hash: str
    snapshot_seq: int
    """0 when no snapshot was used."""
    replayed: int
    journal_records: int
    seconds: float
    tail: TailDamage | None = None
    skipped_snapshots: list[str] = msgspec.field(default_factory=list)


def recover_engine(
    state: JournalState,
    store: SnapshotStore | None,
    fresh: Callable[[], E],
    restore: Callable[[bytes], E],
) -> tuple[E, Recovery]:
    started = time.perf_counter()
    engine, skipped = _from_snapshot(state, store, restore)
    if engine is None:
        engine = fresh()
    snapshot_seq = engine.last_seq
    replayed = 0
    replay = engine.replay
    for record in iter_records(state, after_seq=snapshot_seq):
        replay(record.seq, record.ts, record.command)
        replayed += 1
    if engine.last_seq != state.last_seq:
        raise RecoveryError(
            f"engine at seq {engine.last_seq} after replay, journal ends at {state.last_seq}"
        )
    return engine, Recovery(
        last_seq=state.last_seq,
        last_ts=state.last_ts,
        state_hash=engine.state_hash(),
        snapshot_seq=snapshot_seq,
        replayed=replayed,
        journal_records=state.records,
        seconds=time.perf_counter() - started,
        tail=state.tail,
        skipped_snapshots=skipped,
    )


def _from_snapshot(
    state: JournalState, store: SnapshotStore | None, restore: Callable[[bytes], E]
) -> tuple[E | None, list[str]]:
    skipped: list[str] = []
    for path in reversed(store.paths() if store is not None else []):
        assert store is not None
        try:
            meta, body = store.load(path)
        except (SnapshotCorrupt, msgspec.DecodeError) as exc:
            skipped.append(str(exc))
            continue
        if meta.seq > state.last_seq:
            skipped.append(f"{path}: seq {meta.seq} is beyond the journal's end {state.last_seq}")
            continue
        if meta.seq + 1 < state.first_seq:
            skipped.append(f"{path}: seq {meta.seq} is before the journal's start")
            continue
        engine = restore(body)
        if engine.last_seq != meta.seq or engine.state_hash() != meta.state_hash:
            skipped.append(f"{path}: restored state does not match its seq and hash")
            continue
        return engine, skipped
    return None, skipped


def remove_snapshots_beyond(store: SnapshotStore, last_seq: int) -> list[Path]:
    """Delete snapshots newer than the journal (possible only without fsync durability): the
    seqs after the journal's end will be reused by new commands, so such a snapshot would lie."""
    removed = []
    for path in store.paths():
        try:
            meta, _ = store.load(path)
        except (SnapshotCorrupt, msgspec.DecodeError):
            continue
        if meta.seq > last_seq:
            path.unlink()
            removed.append(path)
    return removed


def full_replay(
    journal_dir: Path, fresh: Callable[[], E], *, upto_seq: int | None = None
) -> tuple[E, JournalState]:
    """Replay from the first record without snapshots or repairs (read-only).

    One pass: each segment is read, validated and applied as it goes (`scan_journal` with
    `apply`); the engine is returned only once the whole journal checked out.
    """
    engine = fresh()
    apply = engine.replay if upto_seq is None else _upto(engine.replay, upto_seq)
    state = scan_journal(journal_dir, repair=False, apply=apply)
    return engine, state


def _upto(
    replay: Callable[[int, int, Command], None], last_seq: int
) -> Callable[[int, int, Command], None]:
    def apply(seq: int, ts: int, command: Command) -> None:
        if seq <= last_seq:
            replay(seq, ts, command)

    return apply
