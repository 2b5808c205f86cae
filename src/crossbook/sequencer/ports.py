"""Ports of the sequencer: what it needs from the outside world, as small Protocols.

- `Clock` gives the stamp; the core never reads a clock itself.
- `Sink` receives each durable batch, in sequence order, on the sequencer's event loop. A sink
  must not block: one that does slow work (a database) queues it and returns.

`Applied` is the unit every sink sees: one command with its stamp and the events it produced.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

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
