"""Reading a journal directory: list segments, validate every frame, cut a torn tail.

Segments are named by the sequence number of their first record (`00000000000000000001.journal`)
and must chain without gaps: each record's seq is its predecessor's plus one, across files.

`scan_journal` checks every frame's CRC and the seq chain, and classifies the first damage it
meets. The chain is checked per segment without decoding every record (the header's first seq,
the number of good frames, the seqs of the first and last records); `iter_records` and a scan
with `apply` (a full replay in the same pass) check every record's seq as they decode it.
Damage is

- a tail: damage in the last segment with no valid frame after it (an interrupted append).
  It is reported in `JournalState.tail` and, with `repair=True`, cut off (truncate + fsync).
- anything else (a bad frame followed by good ones, a bad header, a break in the seq chain,
  damage in an earlier segment) raises `JournalCorrupt` naming the file and the byte offset.
  Nothing is ever skipped silently.

Known limitation: after a power loss a file system may persist a later page of an unsynced
append but not an earlier one. That shows up as damage followed by a valid frame and is
refused like middle damage; those records were never acknowledged, and `crossbook journal
verify` names the offset for an operator to cut.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import crc32c
import msgspec

from crossbook.domain.commands import Command
from crossbook.journal.format import (
    FRAME_HEADER,
    FRAME_OVERHEAD,
    HEADER_SIZE,
    MARK_EVERY,
    FrameRun,
    HeaderError,
    RecordError,
    RecordV1,
    check_frames,
    decode_header,
    decode_record,
    find_next_frame,
    replay_frames,
    skip_frames,
)

SEGMENT_SUFFIX: Final = ".journal"

_LENGTH: Final = struct.Struct("<I")
# Decodes only the stamp; the command stays raw.
_stamp_decoder: Final = msgspec.msgpack.Decoder(tuple[int, int, int, msgspec.Raw])


class JournalCorrupt(Exception):
    """Damage that is not a torn tail: the journal cannot be trusted past `offset` of `path`."""

    def __init__(self, path: Path, offset: int, reason: str) -> None:
        super().__init__(f"journal corrupt: {path} at byte offset {offset}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason


class TailDamage(msgspec.Struct, frozen=True):
    path: str
    offset: int
    dropped_bytes: int
    reason: str
    repaired: bool


class SegmentInfo(msgspec.Struct, frozen=True):
    path: str
    first_seq: int
    last_seq: int
    """`first_seq - 1` for a segment without records."""
    end: int
    """Byte length of the good data (header plus whole frames)."""
    created_ns: int
    marks: list[int] = msgspec.field(default_factory=list)
    """Offsets of every `MARK_EVERY`-th frame (`FrameRun.marks`): `iter_records` starts at the
    nearest one instead of passing over every covered frame."""


class JournalState(msgspec.Struct, frozen=True):
    segments: list[SegmentInfo]
    last_seq: int
    last_ts: int
    tail: TailDamage | None = None

    @property
    def first_seq(self) -> int:
        return self.segments[0].first_seq if self.segments else 1

    @property
    def records(self) -> int:
        return sum(s.last_seq - s.first_seq + 1 for s in self.segments)


def segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}{SEGMENT_SUFFIX}"


def list_segments(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.name.endswith(SEGMENT_SUFFIX))


def scan_journal(
    directory: Path, *, repair: bool, apply: Callable[[int, int, Command], None] | None = None
) -> JournalState:
    """Validate the whole journal in `directory`; see the module docstring.

    Without `apply`, records are not decoded: each segment's seq chain is checked from its
    header's first seq, its count of good frames, and the seqs of its first and last records
    (a gap or a repeated record inside a segment changes the count). With `apply`, every
    record is decoded, must carry its predecessor's seq plus one, and is handed to
    `apply(seq, ts, command)` as the scan goes: validation and a full replay in one pass.
    Damage found later still raises, after earlier records were applied, so a caller discards
    whatever it applied unless this returns.
    """
    paths = list_segments(directory)
    segments: list[SegmentInfo] = []
    last_seq, last_ts = 0, 0
    tail: TailDamage | None = None
    for index, path in enumerate(paths):
        is_last = index == len(paths) - 1
        data = path.read_bytes()
        if is_last and len(data) < HEADER_SIZE:
            # Segments are created atomically, so only a truncated copy gets here; no records.
            tail = TailDamage(str(path), 0, len(data), "segment shorter than its header", repair)
            if repair:
                _remove(path)
            break
        try:
            header = decode_header(data)
        except HeaderError as exc:
            raise JournalCorrupt(path, 0, str(exc)) from None
        if path.name != segment_name(header.first_seq):
            raise JournalCorrupt(path, 0, f"header says first seq {header.first_seq}")
        if segments and header.first_seq != last_seq + 1:
            raise JournalCorrupt(path, 0, f"seq gap: expected {last_seq + 1}")
        try:
            if apply is None:
                run, ts = _check_segment(data, header.first_seq)
            else:
                run, ts = replay_frames(data, HEADER_SIZE, header.first_seq, apply)
        except RecordError as exc:
            raise JournalCorrupt(path, exc.offset, exc.reason) from None
        damage = run.damage
        if damage is not None:
            what = f"{damage.kind.value} record: {damage.reason}"
            if not is_last:
                raise JournalCorrupt(path, damage.offset, f"{what} (not in the last segment)")
            following = find_next_frame(data, damage.offset)
            if following is not None:
                raise JournalCorrupt(
                    path, damage.offset, f"{what}; a valid record follows at offset {following}"
                )
            tail = TailDamage(str(path), damage.offset, len(data) - damage.offset, what, repair)
            if repair:
                _truncate(path, damage.offset)
        last_seq = header.first_seq + run.count - 1
        if run.count:
            last_ts = ts
        segments.append(
            SegmentInfo(
                str(path), header.first_seq, last_seq, run.end, header.created_ns, run.marks
            )
        )
    return JournalState(segments=segments, last_seq=last_seq, last_ts=last_ts, tail=tail)


def _check_segment(data: bytes, first_seq: int) -> tuple[FrameRun, int]:
    """The good frames of a segment, its first and last records' seqs checked; the last ts."""
    run = check_frames(data, HEADER_SIZE)
    if not run.count:
        return run, 0
    _stamp(data, HEADER_SIZE, first_seq)
    return run, _stamp(data, run.last, first_seq + run.count - 1)


def _stamp(data: bytes, offset: int, seq: int) -> int:
    """The ts of the good frame at `offset`, whose record must carry `seq`."""
    (length,) = _LENGTH.unpack_from(data, offset)
    body = offset + FRAME_OVERHEAD
    try:
        _, found, ts, _ = _stamp_decoder.decode(data[body : body + length])
    except msgspec.DecodeError as exc:
        raise RecordError(offset, f"undecodable record: {exc}") from None
    if found != seq:
        raise RecordError(offset, f"expected seq {seq}, found {found}")
    return int(ts)


def iter_records(state: JournalState, after_seq: int = 0) -> Iterator[RecordV1]:
    """Decoded records with seq > `after_seq`, from a state `scan_journal` validated.

    The validated seq chain (each record its predecessor plus one from the segment's first seq)
    says how many frames to pass over: reading starts at the nearest mark and the rest are
    skipped by length, without CRC or decode.
    The frames read are checked against their CRC again (the files were read anew); the
    records stop early if one does not check out, which recovery reports as a short journal.
    Every record read must carry its predecessor's seq plus one, or `JournalCorrupt` names it.
    """
    unpack, crc, decode = FRAME_HEADER.unpack_from, crc32c.crc32c, decode_record
    overhead = FRAME_OVERHEAD
    for segment in state.segments:
        if segment.last_seq <= after_seq:
            continue
        path = Path(segment.path)
        skipped = max(after_seq - segment.first_seq + 1, 0)
        marked = min(skipped // MARK_EVERY, len(segment.marks))
        base = segment.marks[marked - 1] if marked else HEADER_SIZE
        # Only the bytes from the mark on are read; offsets into `data` are relative to `base`.
        with path.open("rb") as handle:
            handle.seek(base)
            data = handle.read(segment.end - base)
        end = len(data)
        if end < segment.end - base:
            return
        offset = skip_frames(data, 0, skipped - marked * MARK_EVERY)
        seq = segment.first_seq + skipped - 1
        while offset < end:
            length, expected = unpack(data, offset)
            body = offset + overhead
            payload = data[body : body + length]
            if body + length > end or crc(payload) != expected:
                return
            try:
                record = decode(payload)
            except msgspec.DecodeError as exc:
                reason = f"undecodable record: {exc}"
                raise JournalCorrupt(path, base + offset, reason) from None
            seq += 1
            if record.seq != seq:
                reason = f"expected seq {seq}, found {record.seq}"
                raise JournalCorrupt(path, base + offset, reason)
            yield record
            offset = body + length


def _truncate(path: Path, size: int) -> None:
    with path.open("r+b") as handle:
        handle.truncate(size)
        os.fsync(handle.fileno())


def _remove(path: Path) -> None:
    path.unlink()
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
