"""Durable records read back from a journal directory, with their events regenerated.

Contract: `journal_records(data_dir, after_seq)` validates `data_dir/journal` read-only (no
repair, no lock, so it may run beside a live node and sees everything durable when it
starts), replays every record through a fresh `Exchange` (the engine is deterministic, so
the events are exactly those the node produced) and yields `Applied` batches of at most
`chunk` records for seq > `after_seq`, in order. It is blocking and CPU bound: run it on a
worker thread (the projector does).

This is the one module of `history` that imports the engine and the journal, and only their
public entry points (`Exchange.apply`, `scan_journal`, `iter_records`); it is the projector's
catch-up source and the input of `crossbook history rebuild`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from crossbook.domain.values import Nanos, Seq
from crossbook.engine.exchange import Exchange
from crossbook.journal.core import JOURNAL_DIR
from crossbook.journal.segments import iter_records, scan_journal
from crossbook.sequencer.ports import Applied


def journal_records(
    data_dir: Path, after_seq: int = 0, *, chunk: int = 5_000
) -> Iterator[list[Applied]]:
    state = scan_journal(Path(data_dir) / JOURNAL_DIR, repair=False)
    engine = Exchange()
    apply = engine.apply
    batch: list[Applied] = []
    for record in iter_records(state):
        events = apply(Seq(record.seq), Nanos(record.ts), record.command)
        if record.seq > after_seq:
            batch.append(Applied(record.seq, record.ts, record.command, events))
            if len(batch) >= chunk:
                yield batch
                batch = []
    if batch:
        yield batch


def catch_up_from(data_dir: Path) -> Callable[[int], Iterator[list[Applied]]]:
    """A projector `catch_up` source reading `data_dir`'s journal."""
    return lambda after_seq: journal_records(data_dir, after_seq)
