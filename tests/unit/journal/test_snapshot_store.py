"""Snapshot files: atomic write, checksums, keep-last-K, skipping damaged or too-new ones."""

from __future__ import annotations

from pathlib import Path

from crossbook.journal.snapshots import SnapshotStore
from crossbook.sequencer.ports import SnapshotMeta


def _meta(seq: int) -> SnapshotMeta:
    return SnapshotMeta(seq=seq, ts=seq * 10, state_hash=f"hash{seq}", created_ns=1)


def test_write_then_load_round_trips(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.write(_meta(5), b"state-5")
    assert store.load(store.path_for(5)) == (_meta(5), b"state-5")
    assert not list(tmp_path.glob("*.tmp"))


def test_only_the_newest_k_are_kept(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path, keep=2)
    for seq in (10, 20, 30, 40):
        store.write(_meta(seq), b"x" * seq)
    assert [p.name for p in store.paths()] == [store.path_for(30).name, store.path_for(40).name]


def test_newest_skips_damaged_and_too_new_snapshots(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path, keep=5)
    for seq in (10, 20, 30):
        store.write(_meta(seq), bytes(range(200)))
    damaged = store.path_for(20)
    data = bytearray(damaged.read_bytes())
    data[-7] ^= 0x40
    damaged.write_bytes(bytes(data))
    found, skipped = store.newest(max_seq=25)
    assert found is not None
    assert found[0] == _meta(10)
    assert len(skipped) == 2
    assert "beyond the journal" in skipped[0]
    assert "body length or CRC" in skipped[1]


def test_a_truncated_snapshot_is_skipped(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.write(_meta(1), b"abc")
    store.path_for(1).write_bytes(b"CRSB")
    found, skipped = store.newest(max_seq=10)
    assert found is None
    assert skipped == [f"snapshot corrupt: {store.path_for(1)}: shorter than its prefix"]
