"""The snapshot store: whole-engine snapshots on disk, each with its seq, stamp and state hash.

A snapshot file is `magic (8) | meta length u32 | crc32c u32 | meta | body`, where `meta` is the
msgpack of `SnapshotMeta` plus the body's length and CRC, and `body` is `Exchange.snapshot()`.
The CRC in the prefix covers the meta; the meta's CRC covers the body.

Writes are atomic and durable: temporary file, fsync, rename, fsync the directory; only then
are snapshots beyond the newest `keep` removed. A reader that finds a damaged snapshot skips it
and tries the next older one (recovery then replays more journal); it never trusts one.

Files are named by seq (`00000000000000001000.snapshot`), so listing sorts newest last.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Final

import crc32c
import msgspec

from crossbook.journal.segments import fsync_directory
from crossbook.sequencer.ports import SnapshotMeta

MAGIC: Final = b"CRSBKSNP"
SUFFIX: Final = ".snapshot"
_PREFIX = struct.Struct("<8sII")


class SnapshotCorrupt(Exception):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"snapshot corrupt: {path}: {reason}")
        self.path = path


class _Stored(msgspec.Struct, frozen=True):
    meta: SnapshotMeta
    body_length: int
    body_crc: int


_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder(_Stored)


def encode_snapshot(meta: SnapshotMeta, body: bytes) -> bytes:
    stored = _encoder.encode(_Stored(meta, len(body), crc32c.crc32c(body)))
    return _PREFIX.pack(MAGIC, len(stored), crc32c.crc32c(stored)) + stored + body


def decode_snapshot(path: Path, data: bytes) -> tuple[SnapshotMeta, bytes]:
    if len(data) < _PREFIX.size:
        raise SnapshotCorrupt(path, "shorter than its prefix")
    magic, length, crc = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise SnapshotCorrupt(path, f"bad magic {magic!r}")
    stored_bytes = data[_PREFIX.size : _PREFIX.size + length]
    if len(stored_bytes) != length or crc32c.crc32c(stored_bytes) != crc:
        raise SnapshotCorrupt(path, "metadata CRC mismatch")
    stored = _decoder.decode(stored_bytes)
    body = data[_PREFIX.size + length :]
    if len(body) != stored.body_length or crc32c.crc32c(body) != stored.body_crc:
        raise SnapshotCorrupt(path, "body length or CRC mismatch")
    return stored.meta, body


class SnapshotStore:
    """Implements the sequencer's `SnapshotWriter` port; `write` blocks (call it off the loop)."""

    def __init__(self, directory: Path, *, keep: int = 3, sync: bool = True) -> None:
        if keep < 1:
            raise ValueError("keep at least one snapshot")
        self.directory = directory
        self.keep = keep
        self.sync = sync

    def path_for(self, seq: int) -> Path:
        return self.directory / f"{seq:020d}{SUFFIX}"

    def paths(self) -> list[Path]:
        """Snapshot files, oldest first."""
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if p.name.endswith(SUFFIX))

    def write(self, meta: SnapshotMeta, body: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path_for(meta.seq)
        temp = path.with_suffix(".tmp")
        with temp.open("wb") as handle:
            handle.write(encode_snapshot(meta, body))
            handle.flush()
            if self.sync:
                os.fsync(handle.fileno())
        os.replace(temp, path)
        if self.sync:
            fsync_directory(self.directory)
        for old in self.paths()[: -self.keep]:
            old.unlink()

    def load(self, path: Path) -> tuple[SnapshotMeta, bytes]:
        return decode_snapshot(path, path.read_bytes())

    def newest(self, max_seq: int) -> tuple[tuple[SnapshotMeta, bytes] | None, list[str]]:
        """The newest intact snapshot with seq <= `max_seq`, and why newer ones were skipped."""
        skipped: list[str] = []
        for path in reversed(self.paths()):
            try:
                meta, body = self.load(path)
            except (SnapshotCorrupt, msgspec.DecodeError) as exc:
                skipped.append(str(exc))
                continue
            if meta.seq > max_seq:
                skipped.append(f"{path}: seq {meta.seq} is beyond the journal's end {max_seq}")
                continue
            return (meta, body), skipped
        return None, skipped
