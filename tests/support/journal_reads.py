"""Reading a running node's journal from a test (read-only: no repair, no lock)."""

from __future__ import annotations

from pathlib import Path

from crossbook.domain import commands as cmd
from crossbook.journal.core import JOURNAL_DIR
from crossbook.journal.segments import iter_records, scan_journal


def journaled_orders(data_dir: Path, account: int) -> int:
    """How many `PlaceOrder`s of `account` the node's journal holds (read while it runs)."""
    state = scan_journal(data_dir / JOURNAL_DIR, repair=False)
    return sum(1 for record in iter_records(state)
               if isinstance(record.command, cmd.PlaceOrder)
               and record.command.account == account)
