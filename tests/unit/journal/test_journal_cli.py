"""`crossbook journal verify|dump|replay` and `crossbook snapshot` on a real data directory."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from crossbook.cli import main
from crossbook.journal.core import JOURNAL_DIR, open_core
from crossbook.journal.segments import list_segments
from crossbook.sequencer.workload import setup_commands


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    async def build() -> None:
        core = await open_core(tmp_path)
        for command in setup_commands(1, 2):
            await core.sequencer.submit(command)
        await core.close()

    asyncio.run(build())
    return tmp_path


def test_verify_dump_replay_snapshot(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["journal", "verify", str(data_dir)]) == 0
    assert "seq 1..9" in capsys.readouterr().out
    assert main(["journal", "dump", str(data_dir), "--from", "9"]) == 0
    assert capsys.readouterr().out.startswith('{"seq":9,')
    assert main(["journal", "replay", str(data_dir)]) == 0
    replay_hash = capsys.readouterr().out.split()[-1]
    assert main(["snapshot", str(data_dir)]) == 0
    assert replay_hash in capsys.readouterr().out
    assert main(["journal", "verify", str(data_dir)]) == 0
    assert "snapshot 9: matches the replay" in capsys.readouterr().out


def test_verify_refuses_middle_damage(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (segment,) = list_segments(data_dir / JOURNAL_DIR)
    data = bytearray(segment.read_bytes())
    data[40] ^= 0xFF
    segment.write_bytes(bytes(data))
    assert main(["journal", "verify", str(data_dir)]) == 1
    assert "REFUSE: journal corrupt" in capsys.readouterr().err
