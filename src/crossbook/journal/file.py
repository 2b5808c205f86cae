"""The file journal: appends framed records to size-rotated segment files (the `Journal` port).

Durability modes (`Durability`), chosen once per node and printed with every figure:

- `fsync`: each commit writes the batch and `fdatasync`s it; nothing is acknowledged before the
  batch survives a power loss. New segments and the directory entry are fsynced too.
  Segments are preallocated: between commits (`prepare`, on the commit thread) the journal
  keeps up to `PREALLOCATE_AHEAD` bytes of synced zeros ahead of the records, so a commit
  overwrites blocks the file already has and its `fdatasync` writes data only. Appending to
  the end instead makes every sync also commit the file's new size and blocks to the file
  system's own journal, a commit shared with every other file's metadata (and, with ext4's
  ordered data, other files' newly allocated data): on a busy disk that is most of a sync's
  time (`bench/fsync_latency.py`, modes `append` and `prezeroed`). The zeros read as the end of
  the records (`format`); `close` cuts them off.
- `os`: each commit writes the batch to the OS without syncing; it survives a killed process,
  not a power loss.
- `none`: commits buffer in memory and write only every `flush_bytes`; a killed process loses
  acknowledged commands. For benchmarks only.

Threading: `append` runs on the event loop, `commit` and `prepare` on one worker thread, never
at the same time. The first failed write or sync poisons the journal: that commit and every
later one raise `OSError`, because after a failed fsync the kernel may have dropped the dirty
pages and a retry could report success for data that is gone.

`open_journal` takes an exclusive lock on the directory, validates it (`scan_journal`, cutting a
torn tail) and returns a journal positioned after the last good record.
"""

from __future__ import annotations

import enum
import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from crossbook.domain.commands import Command
from crossbook.journal.format import RecordEncoder, encode_header
from crossbook.journal.segments import (
    JournalState,
    fsync_directory,
    scan_journal,
    segment_name,
)

DEFAULT_SEGMENT_BYTES: Final = 64 * 1024 * 1024
PREALLOCATE_AHEAD: Final = 2 * 1024 * 1024
"""Synced zeros `prepare` keeps ahead of the records in the current segment (fsync mode)."""
PREALLOCATE_STEP: Final = 256 * 1024
"""Zeros `prepare` adds at a time (one sync, about a millisecond: a commit that arrives
meanwhile waits at most that)."""
_PAGE: Final = 4096
"""Zeros are written a page at a time: one larger write would be cached in large folios, and
each commit's small write would then dirty (and write back) a whole folio, 16 KiB or more."""
PREALLOCATE_BELOW: Final = 64 * 1024
"""`prepare` adds zeros only after a commit smaller than this. A larger batch means heavy
load: its sync already serves thousands of commands, and a second write and sync of zeros
on the commit thread would only lengthen each commit's cycle (the commits then append)."""
LOCK_NAME: Final = "LOCK"


class Durability(enum.StrEnum):
    FSYNC = "fsync"
    OS = "os"
    NONE = "none"


class JournalLocked(Exception):
    """Another process holds the journal directory."""


class FileJournal:
    __slots__ = (
        "_allocated",
        "_buffer",
        "_buffer_first_seq",
        "_directory",
        "_durability",
        "_encoder",
        "_fd",
        "_flush_bytes",
        "_fsync",
        "_last_commit_bytes",
        "_lock_fd",
        "_segment_bytes",
        "_size",
        "failure",
        "last_seq",
    )

    def __init__(
        self,
        directory: Path,
        state: JournalState,
        *,
        durability: Durability = Durability.FSYNC,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        flush_bytes: int = 1024 * 1024,
        fsync: Callable[[int], None] = os.fdatasync,
        lock_fd: int | None = None,
    ) -> None:
        self._directory = directory
        self._durability = durability
        self._segment_bytes = segment_bytes
        self._flush_bytes = flush_bytes
        self._fsync = fsync
        self._lock_fd = lock_fd
        self._encoder = RecordEncoder()
        self._buffer = bytearray()
        self._buffer_first_seq = 0
        self._fd: int | None = None
        self._size = 0
        self._allocated = 0  # synced zeros up to here (the segment size: no more preallocation)
        self._last_commit_bytes = 0
        self.failure: OSError | None = None
        self.last_seq = state.last_seq
        if state.segments:
            last = state.segments[-1]
            self._fd = os.open(last.path, os.O_WRONLY)
            self._size = last.end
            self._allocated = max(os.fstat(self._fd).st_size, last.end)

    @property
    def durability(self) -> Durability:
        return self._durability

    def append(self, seq: int, ts: int, command: Command) -> None:
        if not self._buffer:
            self._buffer_first_seq = seq
        self._encoder.frame_into(self._buffer, seq, ts, command)
        self.last_seq = seq

    def append_many(self, first_seq: int, ts: int, commands: list[Command]) -> int:
        """Append `commands` as seqs `first_seq, ...`; returns how many leading ones were
        appended (fewer than all: `append` of the next one raises why it cannot be encoded)."""
        buffer = self._buffer
        if not buffer:
            self._buffer_first_seq = first_seq
        appended = self._encoder.frame_many(buffer, first_seq, ts, commands)
        if appended:
            self.last_seq = first_seq + appended - 1
        return appended

    def commit(self) -> None:
        if self.failure is not None:
            raise OSError(self.failure.errno, f"journal failed earlier: {self.failure}")
        if not self._buffer:
            return
        if self._durability is Durability.NONE and len(self._buffer) < self._flush_bytes:
            return
        try:
            self._write_buffer()
        except OSError as exc:
            self.failure = exc
            raise

    def prepare(self) -> None:
        """Add `PREALLOCATE_STEP` synced zeros to the current segment while fewer than
        `PREALLOCATE_AHEAD` lie ahead of the records (fsync mode; up to the segment's size;
        not after a commit of `PREALLOCATE_BELOW` bytes or more).
        A write that fails (no space, a file size limit) ends preallocation for this segment:
        commits append as without it, and meet the error themselves if it is real. A failed
        sync poisons the journal like a commit's (the kernel reports a write-back error to one
        sync only): the next commit raises."""
        fd, allocated = self._fd, self._allocated
        if (
            fd is None
            or self.failure is not None
            or self._durability is not Durability.FSYNC
            or allocated - self._size >= PREALLOCATE_AHEAD
            or allocated >= self._segment_bytes
            or self._last_commit_bytes >= PREALLOCATE_BELOW
        ):
            return
        step = min(PREALLOCATE_STEP, self._segment_bytes - allocated)
        try:
            page, end = bytes(_PAGE), allocated + step
            for offset in range(allocated, end, _PAGE):  # page by page: see `_PAGE`
                _write_at(fd, page[: end - offset], offset)
        except OSError:
            self._allocated = self._segment_bytes  # nothing more for this segment
            return
        try:
            os.fdatasync(fd)  # like a rotation's syncs, not the commit's (injectable) one
        except OSError as exc:
            self.failure = exc
            return
        self._allocated = allocated + step

    def flush(self) -> None:
        """Write and sync whatever is buffered, whatever the mode (close, snapshots)."""
        if self.failure is None:
            try:
                if self._buffer:
                    self._write_buffer()
                if self._fd is not None:
                    self._fsync(self._fd)
            except OSError as exc:
                self.failure = exc
                raise

    def close(self) -> None:
        try:
            self.flush()
            if self._fd is not None and self._allocated > self._size and self.failure is None:
                os.ftruncate(self._fd, self._size)  # a closed journal's files hold records only
                self._fsync(self._fd)
                self._allocated = self._size
        finally:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def _write_buffer(self) -> None:
        if self._fd is None or self._size >= self._segment_bytes:
            self._rotate(self._buffer_first_seq)
        assert self._fd is not None
        _write_at(self._fd, self._buffer, self._size)
        if self._durability is Durability.FSYNC:
            self._fsync(self._fd)
        self._last_commit_bytes = len(self._buffer)
        self._size += len(self._buffer)
        self._allocated = max(self._allocated, self._size)
        self._buffer.clear()

    def _rotate(self, first_seq: int) -> None:
        sync = self._durability is Durability.FSYNC
        path = self._directory / segment_name(first_seq)
        temp = path.with_suffix(".tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            header = encode_header(time.time_ns(), first_seq)
            os.write(fd, header)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
        if sync:
            fsync_directory(self._directory)
        if self._fd is not None:
            os.close(self._fd)
        self._fd = os.open(path, os.O_WRONLY)
        self._size = self._allocated = len(header)


def _write_at(fd: int, data: bytes | bytearray, offset: int) -> None:
    size, written = len(data), 0
    with memoryview(data) as view:
        while written < size:
            written += os.pwrite(fd, view[written:], offset + written)


def lock_directory(directory: Path) -> int:
    """Take the directory's exclusive lock; the lock lives as long as the returned fd."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise JournalLocked(f"{directory} is in use by another process") from None
    return fd


def open_journal(
    directory: Path,
    *,
    durability: Durability = Durability.FSYNC,
    segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    fsync: Callable[[int], None] = os.fdatasync,
) -> tuple[FileJournal, JournalState]:
    lock_fd = lock_directory(directory)
    try:
        for stale in directory.glob("*.tmp"):
            stale.unlink()
        state = scan_journal(directory, repair=True)
        journal = FileJournal(
            directory,
            state,
            durability=durability,
            segment_bytes=segment_bytes,
            fsync=fsync,
            lock_fd=lock_fd,
        )
    except BaseException:
        os.close(lock_fd)
        raise
    return journal, state
