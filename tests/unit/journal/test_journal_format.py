"""The pure journal format: headers, frames, the scanner's damage reports, resync probing."""

from __future__ import annotations

from collections.abc import Callable

import crc32c
import pytest

from crossbook.domain.commands import CancelOrder, Command, Deposit, ExpireOrders
from crossbook.domain.values import AccountId, OrderId, Units
from crossbook.journal.format import (
    FRAME_HEADER,
    FRAME_OVERHEAD,
    HEADER_SIZE,
    MARK_EVERY,
    DamageKind,
    FrameScanner,
    HeaderError,
    RecordEncoder,
    RecordError,
    RecordV1,
    check_frames,
    decode_header,
    decode_record,
    encode_header,
    find_next_frame,
    frame,
    replay_frames,
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


def test_frame_many_writes_the_frames_of_frame_into_and_stops_before_what_cannot_encode() -> None:
    commands: list[Command] = [
        Deposit(AccountId(n), "USD", Units(n * 10), f"tx{n}") for n in range(1, 6)
    ]
    commands.insert(2, ExpireOrders())
    encoder, out = RecordEncoder(), bytearray(b"kept")
    assert encoder.frame_many(out, 7, 99, commands) == len(commands)
    assert bytes(out) == b"kept" + b"".join(
        frame(seq, 99, command) for seq, command in enumerate(commands, 7)
    )
    too_big = Deposit(AccountId(1), "USD", Units(2**70), "huge")
    out = bytearray(b"kept")
    assert encoder.frame_many(out, 7, 99, [*commands[:2], too_big, *commands[2:]]) == 2
    assert bytes(out) == b"kept" + frame(7, 99, commands[0]) + frame(8, 99, commands[1])
    assert encoder.frame_many(out, 9, 99, [too_big]) == 0
    assert encoder.frame_many(out, 9, 99, []) == 0
    assert bytes(out) == b"kept" + frame(7, 99, commands[0]) + frame(8, 99, commands[1])


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


def _scanner_view(data: bytes) -> tuple[int, int, object]:
    scanner = FrameScanner(data)
    count = sum(1 for _ in scanner)
    return count, scanner.end, scanner.damage


def _recorder(seqs: list[int]) -> Callable[[int, int, object], None]:
    return lambda seq, ts, command: seqs.append(seq)


def test_check_and_replay_frames_stop_where_the_scanner_stops() -> None:
    clean = _segment(6)
    flipped = bytearray(clean)
    flipped[len(_segment(3)) + FRAME_OVERHEAD + 2] ^= 0x04
    cases = [clean, bytes(flipped), clean + b"\xff\xff\xff\xff" + b"\x00" * 8]
    cases += [clean[:cut] for cut in range(len(_segment(5)), len(clean))]
    for data in cases:
        expected = _scanner_view(data)
        checked = check_frames(data)
        applied: list[int] = []
        replayed, ts = replay_frames(data, HEADER_SIZE, 1, _recorder(applied))
        for run in (checked, replayed):
            assert (run.count, run.end, run.damage) == expected
            assert run.last == skip_frames(data, HEADER_SIZE, max(run.count - 1, 0))
        assert applied == list(range(1, expected[0] + 1))
        assert ts == 1000 + expected[0]


def test_check_frames_of_a_segment_without_records() -> None:
    run = check_frames(encode_header(1, 1))
    assert (run.count, run.end, run.last, run.damage) == (0, HEADER_SIZE, HEADER_SIZE, None)


def test_replay_frames_refuses_a_break_in_the_seq_chain() -> None:
    deposit = Deposit(AccountId(1), "USD", Units(1), "tx")
    data = encode_header(1, 5) + frame(5, 1, deposit) + frame(7, 2, deposit)
    applied: list[int] = []
    with pytest.raises(RecordError, match="expected seq 6, found 7") as caught:
        replay_frames(data, HEADER_SIZE, 5, lambda s, t, c: applied.append(s))
    assert caught.value.offset == len(encode_header(1, 5) + frame(5, 1, deposit))
    assert applied == [5]


def test_replay_frames_refuses_an_undecodable_record_with_a_good_crc() -> None:
    payload = b"\x94\x01\x01\x02"  # a V1 prefix, then too few items
    bogus = FRAME_HEADER.pack(len(payload), crc32c.crc32c(payload)) + payload
    data = _segment(2) + bogus
    with pytest.raises(RecordError, match="undecodable record") as caught:
        replay_frames(data, HEADER_SIZE, 1, lambda s, t, c: None)
    assert caught.value.offset == len(_segment(2))
    assert check_frames(data).count == 3  # frames alone check out


def test_marks_name_the_offset_of_every_mark_every_th_frame() -> None:
    data = _segment(2 * MARK_EVERY + 3)
    offsets = [offset for offset, _ in FrameScanner(data)]
    expected = [offsets[MARK_EVERY], offsets[2 * MARK_EVERY]]
    assert check_frames(data).marks == expected
    run, _ = replay_frames(data, HEADER_SIZE, 1, _recorder([]))
    assert run.marks == expected
    assert run.count == 2 * MARK_EVERY + 3
    exact = _segment(MARK_EVERY)
    assert check_frames(exact).marks == [len(exact)]  # a mark may be the end
    assert replay_frames(exact, HEADER_SIZE, 1, _recorder([]))[0].marks == [len(exact)]
