"""Ports of the sequencer: what it needs from the outside world, as small Protocols.

- `Clock` gives the stamp; the core never reads a clock itself.
- `Sink` receives each durable batch, in sequence order, on the sequencer's event loop. A sink
  must not block: one that does slow work (a database) queues it and returns. A sink that
  raises stops the sequencer (crash-only: restart and recover).
- `Journal` makes stamped commands durable. `append` is called on the event loop for each
  command of a batch (or `append_many` once for the whole batch, where the journal is a
  `BatchJournal`); `commit` is then called once, on a worker thread, and returns only when
  the batch is as durable as the journal's mode promises (write + fsync by default). The two
  never run at the same time. `commit` raises `OSError` on any write or sync failure, and the
  sequencer never acknowledges anything after that. A `PreparingJournal` also has
  `prepare`, which the commit thread runs after handing each commit's result back, so work
  that readies later commits (preallocating file space) never delays an acknowledgement.
- `Engine` is the state machine the sequencer folds commands through
  (`crossbook.engine.exchange.Exchange` in production).
- `SnapshotWriter` persists a captured engine snapshot, off the event loop.

`Applied` is the unit every sink sees: one command with its stamp and the events it produced.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import msgspec

from crossbook.domain.commands import Command
from crossbook.domain.events import Event


class Applied(msgspec.Struct, frozen=True, array_like=True, gc=False):
    seq: int
    ts: int
    command: Command
    events: list[Event]


class Clock(Protocol):
    def now_ns(self) -> int: ...


class Sink(Protocol):
    def on_batch(self, batch: Sequence[Applied]) -> None: ...


class Journal(Protocol):
    def append(self, seq: int, ts: int, command: Command) -> None: ...

    def commit(self) -> None: ...


@runtime_checkable
class BatchJournal(Journal, Protocol):
    def append_many(self, first_seq: int, ts: int, commands: list[Command]) -> int:
        """Append `commands` as seqs `first_seq, first_seq + 1, ...`; returns how many leading
        commands were appended. Fewer than all means the next one cannot be encoded (`append`
        raises OverflowError, TypeError or ValueError for it) and nothing of it is appended."""
        ...


@runtime_checkable
class PreparingJournal(Journal, Protocol):
    def prepare(self) -> None:
        """Ready later commits; on the commit thread, after a commit, never beside one. Never
        raises: a failure poisons the journal, so the next `commit` raises it."""
        ...


class Engine(Protocol):
    @property
    def last_seq(self) -> int: ...

    def apply(self, seq: int, ts: int, command: Command) -> list[Event]: ...

    def snapshot(self) -> bytes: ...

    def state_hash(self) -> str: ...

    def next_expiry(self) -> int | None: ...


class SnapshotMeta(msgspec.Struct, frozen=True):
    seq: int
    ts: int
    state_hash: str
    created_ns: int


class SnapshotWriter(Protocol):
    def write(self, meta: SnapshotMeta, body: bytes) -> None: ...
