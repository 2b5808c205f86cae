"""Pure journal format: segment headers, record frames and a scanner. No I/O.

A segment file is a header followed by records, appended in sequence order:

    header  = magic (8) | version u16 | reserved u16 | created_ns u64 | first_seq u64 | crc32c u32
    record  = length u32 | crc32c u32 | payload (length bytes)

All integers are little-endian. The header's CRC covers its first 28 bytes; a record's CRC
covers its payload. The payload is msgpack (msgspec) of `RecordV1`: the array
`[1, seq, ts, command]`, where the leading 1 is the record version (a msgspec tag). A new record
layout becomes `RecordV2` with tag 2 in the `Record` union; commands themselves evolve by
msgspec's rules (fields appended with defaults, never retyped).

`FrameScanner` walks the frames of a segment's bytes and stops at the first frame that does not
check out, recording why (`Damage`): `TORN` when the bytes end inside a frame (an interrupted
append), `CORRUPT` when a complete frame fails its length or CRC check. Whether damage is a
harmless torn tail or a refusal-worthy hole in the middle is decided by the caller with
`find_next_frame`: damage is a tail only if no valid frame follows it.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterator
from typing import Final, Union

import crc32c
import msgspec

from crossbook.domain.commands import Command

MAGIC: Final = b"CRSBKJNL"
FORMAT_VERSION: Final = 1
RECORD_VERSION: Final = 1

_HEADER = struct.Struct("<8sHHQQ")
_HEADER_CRC = struct.Struct("<I")
HEADER_SIZE: Final = _HEADER.size + _HEADER_CRC.size

_FRAME = struct.Struct("<II")
FRAME_HEADER: Final = _FRAME
"""A frame's `length | crc32c` (for readers that walk frames themselves)."""
FRAME_OVERHEAD: Final = _FRAME.size
_LENGTH = struct.Struct("<I")
MAX_PAYLOAD: Final = 4 * 1024 * 1024
"""Larger lengths are treated as corruption: no command comes close."""

# Every V1 payload starts with a 4-element msgpack array header followed by the tag 1.
_V1_PREFIX: Final = b"\x94\x01"


class RecordV1(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=RECORD_VERSION):
    seq: int
    ts: int
    command: Command


Record = Union[RecordV1]


class HeaderError(ValueError):
    """A segment header that is short, has the wrong magic, version or CRC."""


class SegmentHeader(msgspec.Struct, frozen=True):
    version: int
    created_ns: int
    first_seq: int


def encode_header(created_ns: int, first_seq: int) -> bytes:
    head = _HEADER.pack(MAGIC, FORMAT_VERSION, 0, created_ns, first_seq)
    return head + _HEADER_CRC.pack(crc32c.crc32c(head))


def decode_header(data: bytes | memoryview) -> SegmentHeader:
    if len(data) < HEADER_SIZE:
        raise HeaderError(f"header is {len(data)} bytes, expected {HEADER_SIZE}")
    head = bytes(data[: _HEADER.size])
    magic, version, _, created_ns, first_seq = _HEADER.unpack(head)
    if magic != MAGIC:
        raise HeaderError(f"bad magic {magic!r}")
    (crc,) = _HEADER_CRC.unpack_from(data, _HEADER.size)
    if crc != crc32c.crc32c(head):
        raise HeaderError("header CRC mismatch")
    if version != FORMAT_VERSION:
        raise HeaderError(f"unsupported format version {version}")
    return SegmentHeader(version=version, created_ns=created_ns, first_seq=first_seq)


class RecordEncoder:
    """Frames records into a caller's buffer; one instance per writer (it reuses a buffer)."""

    __slots__ = ("_encoder", "_scratch")

    def __init__(self) -> None:
        self._encoder = msgspec.msgpack.Encoder()
        self._scratch = bytearray()

    def frame_into(self, out: bytearray, seq: int, ts: int, command: Command) -> None:
        # A tuple encodes exactly like RecordV1 (array_like, tag first) without building it.
        payload = self._encoder.encode((RECORD_VERSION, seq, ts, command))
        out += _FRAME.pack(len(payload), crc32c.crc32c(payload))
        out += payload


def frame(seq: int, ts: int, command: Command) -> bytes:
    out = bytearray()
    RecordEncoder().frame_into(out, seq, ts, command)
    return bytes(out)


_record_decoder: Final = msgspec.msgpack.Decoder(Record)


def decode_record(payload: bytes | memoryview) -> Record:
    """Decode one payload; raises `msgspec.DecodeError` (or ValidationError) if it is not one."""
    return _record_decoder.decode(payload)


class DamageKind(enum.Enum):
    TORN = "torn"
    """The bytes end inside a frame: an append that did not finish."""
    CORRUPT = "corrupt"
    """A complete frame whose length is impossible or whose CRC does not match."""


class Damage(msgspec.Struct, frozen=True):
    kind: DamageKind
    offset: int
    reason: str


class FrameScanner:
    """Iterate `(offset, payload)` over the frames of `data` from `start`.

    After the iteration ends, `end` is the offset just past the last good frame and `damage`
    says why scanning stopped early (None when it ended exactly at the end of `data`).
    """

    __slots__ = ("_data", "_start", "damage", "end")

    def __init__(self, data: bytes | memoryview, start: int = HEADER_SIZE) -> None:
        self._data = memoryview(data)
        self._start = start
        self.end = start
        self.damage: Damage | None = None

    def __iter__(self) -> Iterator[tuple[int, memoryview]]:
        data, size, offset = self._data, len(self._data), self._start
        unpack, crc, overhead = _FRAME.unpack_from, crc32c.crc32c, FRAME_OVERHEAD
        while offset < size:
            if size - offset < overhead:
                self.damage = Damage(DamageKind.TORN, offset, "incomplete frame header")
                break
            length, expected = unpack(data, offset)
            if length > MAX_PAYLOAD:
                self.damage = Damage(DamageKind.CORRUPT, offset, f"impossible length {length}")
                break
            body = offset + overhead
            if body + length > size:
                self.damage = Damage(
                    DamageKind.TORN, offset, f"frame of {length} bytes runs past the end"
                )
                break
            payload = data[body : body + length]
            if crc(payload) != expected:
                self.damage = Damage(DamageKind.CORRUPT, offset, "CRC mismatch")
                break
            yield offset, payload
            offset = body + length
            self.end = offset


def skip_frames(data: bytes | memoryview, start: int, count: int) -> int:
    """The offset just past `count` frames from `start`, reading only their lengths.

    For frames already validated (`scan_journal`): no CRC and no decode, so jumping over the
    records a snapshot covers costs next to nothing. Raises ValueError if they run past `data`.
    """
    unpack, offset = _LENGTH.unpack_from, start
    try:
        for _ in range(count):
            (length,) = unpack(data, offset)
            offset += FRAME_OVERHEAD + length
    except struct.error:
        offset = len(data) + 1
    if offset > len(data):
        raise ValueError(f"{count} frames from offset {start} run past the end ({len(data)})")
    return offset


def find_next_frame(data: bytes | memoryview, after: int) -> int | None:
    """The offset of the first valid V1 frame that starts after `after`, or None.

    Used to tell a torn tail (nothing valid follows) from damage in the middle. It probes only
    offsets whose payload starts like a V1 record, so it is fast even on large segments.
    """
    raw = bytes(data)
    position = after + 1 + FRAME_OVERHEAD
    while True:
        found = raw.find(_V1_PREFIX, position)
        if found < 0:
            return None
        offset = found - FRAME_OVERHEAD
        length, expected = _FRAME.unpack_from(raw, offset)
        end = found + length
        if length <= MAX_PAYLOAD and end <= len(raw) and crc32c.crc32c(raw[found:end]) == expected:
            return offset
        position = found + 1
