"""The file journal on real files: appends, rotation, reopen, tail repair, middle refusal."""

from __future__ import annotations

import errno
import itertools
import os
import shutil
from pathlib import Path

import crc32c
import pytest

from crossbook.domain.commands import Deposit
from crossbook.domain.values import AccountId, Units
from crossbook.journal.file import (
    PREALLOCATE_AHEAD,
    PREALLOCATE_BELOW,
    Durability,
    JournalLocked,
    open_journal,
)
from crossbook.journal.format import (
    FRAME_HEADER,
    HEADER_SIZE,
    MARK_EVERY,
    encode_header,
    frame,
)
from crossbook.journal.recovery import full_replay
from crossbook.journal.segments import (
    JournalCorrupt,
    iter_records,
    list_segments,
    scan_journal,
    segment_name,
)


def _deposit(seq: int) -> Deposit:
    return Deposit(AccountId(seq % 7), "USD", Units(seq), f"tx{seq}")


def _write(directory: Path, first: int, last: int, *, batch: int = 10, **options: object) -> None:
    journal, state = open_journal(directory, **options)  # type: ignore[arg-type]
    assert state.last_seq == first - 1
    try:
        for seq in range(first, last + 1):
            journal.append(seq, seq * 100, _deposit(seq))
            if seq % batch == 0:
                journal.commit()
        journal.commit()
    finally:
        journal.close()


def test_fresh_directory_is_an_empty_journal(tmp_path: Path) -> None:
    journal, state = open_journal(tmp_path / "j")
    journal.close()
    assert (state.last_seq, state.records, state.tail, state.segments) == (0, 0, None, [])


def test_records_survive_reopen_and_rotate_by_size(tmp_path: Path) -> None:
    directory = tmp_path / "j"
    _write(directory, 1, 300, segment_bytes=2000)
    _write(directory, 301, 500, segment_bytes=2000)
    state = scan_journal(directory, repair=False)
    assert state.last_seq == 500
    assert state.last_ts == 50_000
    assert len(state.segments) > 5
    assert [r.seq for r in iter_records(state)] == list(range(1, 501))
    assert [r.seq for r in iter_records(state, after_seq=432)] == list(range(433, 501))
    assert next(iter_records(state, after_seq=499)).command == _deposit(500)


def test_records_after_a_seq_start_from_the_nearest_mark(tmp_path: Path) -> None:
    total = 2 * MARK_EVERY + 10
    _write(tmp_path, 1, total, batch=1000)
    state = scan_journal(tmp_path, repair=False)
    (segment,) = state.segments
    assert len(segment.marks) == 2
    for after in (MARK_EVERY - 1, MARK_EVERY, MARK_EVERY + 1, 2 * MARK_EVERY + 3, total - 1):
        records = iter_records(state, after_seq=after)
        assert [r.seq for r in itertools.islice(records, 3)] == [
            seq for seq in range(after + 1, after + 4) if seq <= total
        ]
    assert next(iter_records(state, after_seq=MARK_EVERY)).command == _deposit(MARK_EVERY + 1)


def test_records_after_a_seq_inside_one_segment(tmp_path: Path) -> None:
    _write(tmp_path, 1, 300)
    state = scan_journal(tmp_path, repair=False)
    assert len(state.segments) == 1
    for after in (0, 1, 150, 299):
        records = list(iter_records(state, after_seq=after))
        assert [r.seq for r in records] == list(range(after + 1, 301))
        assert records[0].command == _deposit(after + 1)
    assert list(iter_records(state, after_seq=300)) == []


@pytest.mark.parametrize("durability", list(Durability))
def test_every_durability_mode_keeps_records_after_close(
    tmp_path: Path, durability: Durability
) -> None:
    _write(tmp_path, 1, 50, durability=durability)
    assert scan_journal(tmp_path, repair=False).last_seq == 50


def test_a_torn_tail_is_reported_and_cut_then_appends_continue(tmp_path: Path) -> None:
    _write(tmp_path, 1, 40)
    (segment,) = list_segments(tmp_path)
    size = segment.stat().st_size
    os.truncate(segment, size - 5)
    report = scan_journal(tmp_path, repair=False)
    assert report.last_seq == 39
    assert report.tail is not None
    assert report.tail.offset < size - 5
    assert not report.tail.repaired
    assert segment.stat().st_size == size - 5  # verify without repair leaves the file alone
    _write(tmp_path, 40, 60)  # open_journal repairs, then appending resumes at seq 40
    state = scan_journal(tmp_path, repair=False)
    assert state.tail is None
    assert [r.seq for r in iter_records(state)] == list(range(1, 61))


def test_damage_in_the_middle_names_file_and_offset(tmp_path: Path) -> None:
    _write(tmp_path, 1, 40)
    (segment,) = list_segments(tmp_path)
    data = bytearray(segment.read_bytes())
    data[HEADER_SIZE + 200] ^= 0x01
    segment.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt) as caught:
        open_journal(tmp_path)
    assert str(segment) in str(caught.value)
    assert caught.value.offset <= HEADER_SIZE + 200
    assert "valid record follows" in str(caught.value)
    with pytest.raises(JournalCorrupt):  # the lock was released: the refusal repeats
        open_journal(tmp_path)


def test_damage_in_an_earlier_segment_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, 1, 200, segment_bytes=1500)
    first = list_segments(tmp_path)[0]
    with first.open("r+b") as handle:
        handle.truncate(first.stat().st_size - 3)
    with pytest.raises(JournalCorrupt, match="not in the last segment"):
        scan_journal(tmp_path, repair=True)


def test_a_missing_segment_is_a_seq_gap(tmp_path: Path) -> None:
    _write(tmp_path, 1, 200, segment_bytes=1500)
    list_segments(tmp_path)[1].unlink()
    with pytest.raises(JournalCorrupt, match="seq gap"):
        scan_journal(tmp_path, repair=True)


def test_a_second_writer_is_locked_out(tmp_path: Path) -> None:
    journal, _ = open_journal(tmp_path)
    try:
        with pytest.raises(JournalLocked):
            open_journal(tmp_path)
    finally:
        journal.close()
    open_journal(tmp_path)[0].close()


def test_a_failed_sync_poisons_the_journal(tmp_path: Path) -> None:
    calls = 0

    def failing_fsync(fd: int) -> None:
        nonlocal calls
        calls += 1
        if calls >= 2:
            raise OSError(errno.EIO, "injected EIO")
        os.fdatasync(fd)

    journal, _ = open_journal(tmp_path, fsync=failing_fsync)
    journal.append(1, 1, _deposit(1))
    journal.commit()
    journal.append(2, 2, _deposit(2))
    with pytest.raises(OSError, match="injected EIO"):
        journal.commit()
    journal.append(3, 3, _deposit(3))
    with pytest.raises(OSError, match="failed earlier"):
        journal.commit()
    journal.close()  # releases the files and the lock without writing anything more
    assert scan_journal(tmp_path, repair=False).last_seq <= 2


def _segment_of(directory: Path, first_seq: int, frames: list[bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / segment_name(first_seq)
    path.write_bytes(encode_header(1, first_seq) + b"".join(frames))
    return path


class _Recorder:
    """Stands in for an engine in `full_replay`: records what it was asked to replay."""

    def __init__(self) -> None:
        self.seqs: list[int] = []

    def replay(self, seq: int, ts: int, command: object) -> None:
        self.seqs.append(seq)


def test_full_replay_applies_everything_in_one_pass_and_cuts_nothing(tmp_path: Path) -> None:
    _write(tmp_path, 1, 200, segment_bytes=1500)
    _write(tmp_path, 201, 230, segment_bytes=1500)
    (segment,) = list_segments(tmp_path)[-1:]
    os.truncate(segment, segment.stat().st_size - 3)
    engine, state = full_replay(tmp_path, _Recorder)
    assert engine.seqs == list(range(1, 230))
    assert state == scan_journal(tmp_path, repair=False)
    assert state.tail is not None
    assert not state.tail.repaired
    partial, _ = full_replay(tmp_path, _Recorder, upto_seq=120)
    assert partial.seqs == list(range(1, 121))


def test_full_replay_refuses_middle_damage_after_applying_the_records_before(
    tmp_path: Path,
) -> None:
    _write(tmp_path, 1, 40)
    (segment,) = list_segments(tmp_path)
    data = bytearray(segment.read_bytes())
    data[HEADER_SIZE + 300] ^= 0x01
    segment.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt, match="valid record follows") as caught:
        full_replay(tmp_path, _Recorder)
    assert caught.value.path == segment


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_repeated_record_with_a_good_crc_is_a_seq_break(tmp_path: Path, where: str) -> None:
    seqs = {"first": [1, 1, 2, 3], "middle": [1, 2, 2, 3], "last": [1, 2, 3, 3]}[where]
    path = _segment_of(tmp_path, 1, [frame(seq, seq, _deposit(seq)) for seq in seqs])
    with pytest.raises(JournalCorrupt, match="expected seq") as caught:
        scan_journal(tmp_path, repair=True)
    assert caught.value.path == path
    with pytest.raises(JournalCorrupt, match="expected seq"):
        full_replay(tmp_path, _Recorder)


def test_a_gap_and_a_repeat_that_cancel_out_are_caught_where_records_are_decoded(
    tmp_path: Path,
) -> None:
    # Frames alone cannot tell 1, 3, 3, 4 from 1, 2, 3, 4 (same count, same first and last);
    # every reader that decodes the records checks each seq.
    frames = [frame(seq, seq, _deposit(seq)) for seq in (1, 3, 3, 4)]
    path = _segment_of(tmp_path, 1, frames)
    state = scan_journal(tmp_path, repair=False)
    assert state.last_seq == 4
    second = HEADER_SIZE + len(frames[0])
    with pytest.raises(JournalCorrupt, match="expected seq 2, found 3") as caught:
        list(iter_records(state))
    assert (caught.value.path, caught.value.offset) == (path, second)
    with pytest.raises(JournalCorrupt, match="expected seq 2, found 3") as caught:
        full_replay(tmp_path, _Recorder)
    assert (caught.value.path, caught.value.offset) == (path, second)


def test_an_undecodable_record_with_a_good_crc_is_refused_where_it_is_read(
    tmp_path: Path,
) -> None:
    payload = b"\x94\x01\x02\x03"  # a V1 prefix, then too few items
    bogus = FRAME_HEADER.pack(len(payload), crc32c.crc32c(payload)) + payload
    good = [frame(seq, seq, _deposit(seq)) for seq in (1, 2, 3)]
    path = _segment_of(tmp_path, 1, [good[0], bogus, good[2]])
    state = scan_journal(tmp_path, repair=False)  # frames and the first and last seqs check out
    with pytest.raises(JournalCorrupt, match="undecodable record") as caught:
        list(iter_records(state))
    assert (caught.value.path, caught.value.offset) == (path, HEADER_SIZE + len(good[0]))
    with pytest.raises(JournalCorrupt, match="undecodable record"):
        full_replay(tmp_path, _Recorder)
    _segment_of(tmp_path, 1, [good[0], good[1], bogus])
    with pytest.raises(JournalCorrupt, match="undecodable record"):
        scan_journal(tmp_path, repair=False)  # the last record's stamp is always decoded


def test_a_seq_break_after_a_mark_is_named_at_its_offset_in_the_file(tmp_path: Path) -> None:
    seqs = [*range(1, MARK_EVERY + 2), MARK_EVERY + 3, MARK_EVERY + 3, MARK_EVERY + 4]
    frames = [frame(seq, seq, _deposit(seq)) for seq in seqs]
    path = _segment_of(tmp_path, 1, frames)
    state = scan_journal(tmp_path, repair=False)
    assert state.segments[0].marks
    records = iter_records(state, after_seq=MARK_EVERY)
    assert next(records).seq == MARK_EVERY + 1
    with pytest.raises(JournalCorrupt, match=f"expected seq {MARK_EVERY + 2}") as caught:
        next(records)
    bad = HEADER_SIZE + sum(len(f) for f in frames[: MARK_EVERY + 1])
    assert (caught.value.path, caught.value.offset) == (path, bad)


def test_segments_are_preallocated_and_a_crash_leaves_zeros_that_read_as_the_end(
    tmp_path: Path,
) -> None:
    live, copy = tmp_path / "live", tmp_path / "copy"
    journal, _ = open_journal(live)
    for seq in range(1, 31):
        journal.append(seq, seq * 100, _deposit(seq))
        journal.commit()
        journal.prepare()
    (segment,) = list_segments(live)
    state = scan_journal(live, repair=False)
    assert segment.stat().st_size >= PREALLOCATE_AHEAD > state.segments[0].end
    shutil.copytree(live, copy)  # what a crash leaves: records, then synced zeros
    journal.close()
    assert segment.stat().st_size == state.segments[0].end  # a clean close cuts the zeros
    crashed = scan_journal(copy, repair=True)
    assert (crashed.last_seq, crashed.tail) == (30, None)
    assert crashed.segments[0].end == state.segments[0].end
    assert full_replay(copy, _Recorder)[0].seqs == list(range(1, 31))
    size = list_segments(copy)[0].stat().st_size
    journal, _ = open_journal(copy)
    journal.append(31, 3100, _deposit(31))
    journal.commit()  # written in place, over the zeros
    assert list_segments(copy)[0].stat().st_size == size
    journal.close()
    assert [r.seq for r in iter_records(scan_journal(copy, repair=False))] == list(range(1, 32))


@pytest.mark.parametrize("after_zeros", ["garbage", "a record"])
def test_zeros_followed_by_other_bytes_are_damage(tmp_path: Path, after_zeros: str) -> None:
    frames = [frame(seq, seq, _deposit(seq)) for seq in (1, 2, 3)]
    follows = b"\x07" if after_zeros == "garbage" else frames[2]
    path = _segment_of(tmp_path, 1, [frames[0], frames[1], bytes(100), follows])
    zeros_at = HEADER_SIZE + len(frames[0]) + len(frames[1])
    if after_zeros == "a record":
        with pytest.raises(JournalCorrupt, match="valid record follows") as caught:
            scan_journal(tmp_path, repair=True)
        assert caught.value.offset == zeros_at
        return
    state = scan_journal(tmp_path, repair=True)
    assert state.last_seq == 2
    assert state.tail is not None
    assert (state.tail.offset, state.tail.repaired) == (zeros_at, True)
    assert path.stat().st_size == zeros_at


def test_preallocation_stops_at_the_segment_size(tmp_path: Path) -> None:
    journal, _ = open_journal(tmp_path, segment_bytes=4096)
    for seq in range(1, 301):
        journal.append(seq, seq, _deposit(seq))
        if seq % 7 == 0:
            journal.commit()
            journal.prepare()
            (current,) = list_segments(tmp_path)[-1:]
            assert current.stat().st_size <= max(4096, scan_journal(tmp_path, repair=False)
                                                   .segments[-1].end)
    journal.close()
    state = scan_journal(tmp_path, repair=False)
    assert len(state.segments) >= 3
    for segment in state.segments:  # rotated segments hold records only
        assert Path(segment.path).stat().st_size == segment.end


def test_a_large_commit_appends_without_preallocating_and_a_small_one_resumes(
    tmp_path: Path,
) -> None:
    journal, _ = open_journal(tmp_path)
    seq = framed = 0
    while framed < PREALLOCATE_BELOW:  # one batch of that many bytes: heavy load
        seq += 1
        journal.append(seq, seq, _deposit(seq))
        framed += len(frame(seq, seq, _deposit(seq)))
    journal.commit()
    journal.prepare()
    (segment,) = list_segments(tmp_path)
    end = scan_journal(tmp_path, repair=False).segments[0].end
    assert segment.stat().st_size == end  # no zeros ahead: the next commit appends
    seq += 1
    journal.append(seq, seq, _deposit(seq))
    journal.commit()
    journal.prepare()  # a small commit again: zeros ahead of the records
    assert segment.stat().st_size >= end + PREALLOCATE_AHEAD // 8
    journal.close()
    assert [r.seq for r in iter_records(scan_journal(tmp_path, repair=False))] == list(
        range(1, seq + 1)
    )
