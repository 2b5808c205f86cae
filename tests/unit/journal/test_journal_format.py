"""The pure journal format: headers, frames, the scanner's damage reports, resync probing."""

from __future__ import annotations

import pytest

from crossbook.domain.commands import CancelOrder, Deposit, ExpireOrders
from crossbook.domain.values import AccountId, OrderId, Units
from crossbook.journal.format import (
    FRAME_OVERHEAD,
    HEADER_SIZE,
    DamageKind,
    FrameScanner,
    HeaderError,
    RecordV1,
    decode_header,
    decode_record,
    encode_header,
    find_next_frame,
    frame,
    skip_frames,
)


def _segment(count: int) -> bytes:
    body = b"".join(
        frame(seq, 1000 + seq, Deposit(AccountId(seq), "USD", Units(seq * 10), f"tx{seq}"))
        for seq in range(1, count + 1)
    )
    return encode_header(123, 1) + body


def test_header_round_trips() -> None:
    header = decode_header(encode_header(created_ns=42, first_seq=7))
    assert (header.version, header.created_ns, header.first_seq) == (1, 42, 7)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda h: h[:10], "header is 10 bytes"),
        (lambda h: b"X" + h[1:], "bad magic"),
        (lambda h: h[:20] + bytes([h[20] ^ 1]) + h[21:], "CRC mismatch"),
    ],
)
def test_header_damage_is_refused(damage: object, message: str) -> None:
    assert callable(damage)
    with pytest.raises(HeaderError, match=message):
        decode_header(damage(encode_header(1, 1)))


def test_record_round_trips_and_is_versioned() -> None:
    command = CancelOrder(AccountId(3), "BTC-USD", order_id=OrderId(9))
    data = frame(5, 77, command)
    payload = data[FRAME_OVERHEAD:]
    assert payload[:2] == b"\x94\x01"  # array of 4, record version 1 first
    assert decode_record(payload) == RecordV1(seq=5, ts=77, command=command)


def test_scanner_reads_every_frame_of_a_clean_segment() -> None:
    data = _segment(20)
    scanner = FrameScanner(data)
    seqs = [decode_record(payload).seq for _, payload in scanner]
    assert seqs == list(range(1, 21))
    assert scanner.damage is None
    assert scanner.end == len(data)


def test_scanner_reports_a_torn_tail_at_the_last_good_offset() -> None:
    data = _segment(5)
    last = len(_segment(4))
    for cut in range(last + 1, len(data)):
        scanner = FrameScanner(data[:cut])
        assert len(list(scanner)) == 4
        assert scanner.damage is not None
        assert scanner.damage.kind is DamageKind.TORN
        assert scanner.end == scanner.damage.offset == last


def test_scanner_reports_a_flipped_bit_as_corrupt() -> None:
    data = bytearray(_segment(5))
    third = len(_segment(2))
    data[third + FRAME_OVERHEAD + 3] ^= 0x10
    scanner = FrameScanner(bytes(data))
    assert len(list(scanner)) == 2
    assert scanner.damage is not None
    assert scanner.damage.kind is DamageKind.CORRUPT
    assert scanner.damage.offset == third


def test_scanner_refuses_an_impossible_length() -> None:
    data = _segment(1) + b"\xff\xff\xff\xff" + b"\x00" * 20
    scanner = FrameScanner(data)
    assert len(list(scanner)) == 1
    assert scanner.damage is not None
    assert scanner.damage.kind is DamageKind.CORRUPT
    assert "impossible length" in scanner.damage.reason


def test_skip_frames_lands_on_the_frame_a_scanner_would_reach() -> None:
    data = _segment(20)
    offsets = [offset for offset, _ in FrameScanner(data)]
    assert skip_frames(data, HEADER_SIZE, 0) == HEADER_SIZE
    assert skip_frames(data, HEADER_SIZE, 7) == offsets[7]
    assert skip_frames(data, HEADER_SIZE, 20) == len(data)
    with pytest.raises(ValueError, match="run past the end"):
        skip_frames(data[:-1], HEADER_SIZE, 20)
    with pytest.raises(ValueError, match="run past the end"):
        skip_frames(data, HEADER_SIZE, 21)


def test_find_next_frame_tells_middle_damage_from_a_tail() -> None:
    data = bytearray(_segment(6))
    second = len(_segment(1))
    third = len(_segment(2))
    data[second + 1] ^= 0xFF  # break the second frame's length
    assert find_next_frame(bytes(data), second) == third
    assert find_next_frame(bytes(data), len(_segment(5))) is None
    assert find_next_frame(encode_header(1, 1), HEADER_SIZE) is None


def test_expire_orders_has_no_fields_yet_frames() -> None:
    record = decode_record(frame(1, 2, ExpireOrders())[FRAME_OVERHEAD:])
    assert record.command == ExpireOrders()
