"""The file journal on real files: appends, rotation, reopen, tail repair, middle refusal."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from crossbook.domain.commands import Deposit
from crossbook.domain.values import AccountId, Units
from crossbook.journal.file import Durability, JournalLocked, open_journal
from crossbook.journal.format import HEADER_SIZE
from crossbook.journal.segments import (
    JournalCorrupt,
    iter_records,
    list_segments,
    scan_journal,
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
