"""`open_core`: recover a data directory and return the running single writer and its engine.

This is the durable core a node composes (`crossbook serve`): gateways `submit` commands to
`core.sequencer`, read queries from `core.engine` on the same event loop, and add sinks
(market data, history, metrics) with `core.sequencer.add_sink`. Opening always recovers:

    core = await open_core(data_dir, durability=Durability.FSYNC)
    applied = await core.sequencer.submit(command)     # durable, applied, events in hand
    await core.close()                                 # drains the inbox, syncs, unlocks

Steps: lock `data_dir/journal`, validate it and cut a torn tail (a corrupt middle raises
`JournalCorrupt`), drop snapshots beyond the journal's end, restore the newest valid snapshot,
replay the tail (on a worker thread, so the loop stays responsive), then start the sequencer.
`core.recovery` reports what happened; callers should print it, with the durability mode.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from crossbook.engine.exchange import Exchange
from crossbook.journal.file import (
    DEFAULT_SEGMENT_BYTES,
    Durability,
    FileJournal,
    open_journal,
)
from crossbook.journal.recovery import Recovery, recover_engine, remove_snapshots_beyond
from crossbook.journal.snapshots import SnapshotStore
from crossbook.sequencer.loop import Sequencer, SequencerConfig
from crossbook.sequencer.ports import Clock, Sink

JOURNAL_DIR = "journal"
SNAPSHOT_DIR = "snapshots"


@dataclass(slots=True)
class Core:
    engine: Exchange
    sequencer: Sequencer
    journal: FileJournal
    snapshots: SnapshotStore
    recovery: Recovery
    durability: Durability

    async def close(self) -> None:
        try:
            await self.sequencer.stop()
        finally:
            await asyncio.to_thread(self.journal.close)


def open_store(data_dir: Path, durability: Durability, keep: int = 3) -> SnapshotStore:
    return SnapshotStore(data_dir / SNAPSHOT_DIR, keep=keep, sync=durability is not Durability.NONE)


def recover_directory(
    data_dir: Path,
    *,
    durability: Durability = Durability.FSYNC,
    segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    keep_snapshots: int = 3,
    fsync: Callable[[int], None] = os.fdatasync,
) -> tuple[Exchange, FileJournal, SnapshotStore, Recovery]:
    """The blocking part of `open_core` (also used by `crossbook snapshot`)."""
    journal, state = open_journal(
        data_dir / JOURNAL_DIR, durability=durability, segment_bytes=segment_bytes, fsync=fsync
    )
    try:
        store = open_store(data_dir, durability, keep_snapshots)
        remove_snapshots_beyond(store, state.last_seq)
        engine, recovery = recover_engine(state, store, Exchange, Exchange.restore)
    except BaseException:
        journal.close()
        raise
    return engine, journal, store, recovery


async def open_core(
    data_dir: Path,
    *,
    durability: Durability = Durability.FSYNC,
    clock: Clock | None = None,
    sinks: Sequence[Sink] = (),
    config: SequencerConfig | None = None,
    segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    keep_snapshots: int = 3,
    fsync: Callable[[int], None] = os.fdatasync,
) -> Core:
    engine, journal, store, recovery = await asyncio.to_thread(
        recover_directory,
        data_dir,
        durability=durability,
        segment_bytes=segment_bytes,
        keep_snapshots=keep_snapshots,
        fsync=fsync,
    )
    sequencer = Sequencer(
        engine,
        journal,
        clock=clock,
        sinks=sinks,
        snapshots=store,
        config=config,
        last_ts=recovery.last_ts,
    )
    sequencer.start()
    return Core(engine, sequencer, journal, store, recovery, durability)
