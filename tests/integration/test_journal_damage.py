"""Truncate and corrupt journal files at random offsets: start with the good prefix or refuse.

A journal of a few hundred commands over several segments is built once through the real
sequencer. Each trial damages a copy: truncation at a random offset of a random segment, or a
flipped byte anywhere. Opening the copy must then either

- succeed with a prefix of the original records (tail damage, reported in `recovery.tail`),
  its state hash equal to a full replay of that prefix; or
- raise `JournalCorrupt` naming the damaged file (middle damage).

Truncating the last segment always succeeds; damaging an earlier segment always refuses.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import shutil
from pathlib import Path

import pytest

from crossbook.engine.exchange import Exchange
from crossbook.journal.core import JOURNAL_DIR, open_core, recover_directory
from crossbook.journal.recovery import full_replay
from crossbook.journal.segments import JournalCorrupt, iter_records, list_segments, scan_journal
from crossbook.sequencer.loop import SequencerConfig
from crossbook.sequencer.workload import order_flow, setup_commands

TRIALS = 40


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("original")

    async def build() -> None:
        config = SequencerConfig(snapshot_every=None, snapshot_interval=None)
        core = await open_core(data, config=config, segment_bytes=4096)
        commands = [*setup_commands(2, 4), *itertools.islice(order_flow(9, 2, 4), 400)]
        for start in range(0, len(commands), 25):
            await asyncio.gather(*(core.sequencer.submit(c) for c in commands[start : start + 25]))
        await core.close()

    asyncio.run(build())
    assert len(list_segments(data / JOURNAL_DIR)) >= 4
    return data


def _records(data: Path) -> list[tuple[int, int, object]]:
    state = scan_journal(data / JOURNAL_DIR, repair=False)
    return [(r.seq, r.ts, r.command) for r in iter_records(state)]


def _damage(original: Path, target: Path, rng: random.Random, truncate: bool) -> Path:
    shutil.copytree(original, target)
    segments = list_segments(target / JOURNAL_DIR)
    victim = rng.choice(segments)
    data = bytearray(victim.read_bytes())
    offset = rng.randrange(len(data))
    if truncate:
        del data[offset:]
    else:
        data[offset] ^= 1 << rng.randrange(8)
    victim.write_bytes(bytes(data))
    return victim


@pytest.mark.parametrize("truncate", [True, False], ids=["truncate", "flip"])
def test_random_damage_gives_a_prefix_or_a_clear_refusal(
    original: Path, tmp_path: Path, truncate: bool
) -> None:
    rng = random.Random(77 if truncate else 78)
    reference = _records(original)
    outcomes = {"prefix": 0, "refused": 0}
    for trial in range(TRIALS):
        copy = tmp_path / f"trial{trial}"
        victim = _damage(original, copy, rng, truncate)
        is_last = victim == list_segments(copy / JOURNAL_DIR)[-1]
        refusal: JournalCorrupt | None = None
        try:
            engine, journal, _, recovery = recover_directory(copy)
        except JournalCorrupt as exc:
            refusal = exc
        if refusal is not None:
            assert str(victim) in str(refusal)
            assert not (truncate and is_last), f"a torn tail was refused: {refusal}"
            outcomes["refused"] += 1
            continue
        journal.close()
        assert is_last or recovery.last_seq == len(reference)
        assert _records(copy) == reference[: recovery.last_seq]
        replayed, _ = full_replay(copy / JOURNAL_DIR, Exchange)
        assert engine.state_hash() == replayed.state_hash() == recovery.state_hash
        if recovery.last_seq < len(reference) or recovery.tail is not None:
            assert recovery.tail is not None
            assert recovery.tail.path == str(victim)
        outcomes["prefix"] += 1
    assert outcomes["prefix"] > 0
    if not truncate:
        assert outcomes["refused"] > 0
