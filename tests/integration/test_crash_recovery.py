"""Crash tests with real processes: SIGKILL under load, restart, nothing acknowledged is lost.

Each round starts `crash_driver.py` on the same data directory, waits for a random number of
new acknowledgements, and kills it with SIGKILL. Then, from the files alone:

- every acknowledged `(seq, command)` is in the journal, byte for byte;
- the restarted node's recovered state hash (snapshot plus tail) equals a full replay of
  exactly the journaled prefix, and it resumes at the journal's last seq.

Five rounds run by default; `CROSSBOOK_CRASH_ROUNDS=20` (or `-m slow`) runs the full twenty.
A last test runs the driver under RLIMIT_FSIZE so that a journal write fails for real (EFBIG):
the node turns unhealthy and acknowledges nothing that is not in the journal.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO

import msgspec
import pytest

from crossbook.domain.commands import Command
from crossbook.engine.exchange import Exchange
from crossbook.journal.core import JOURNAL_DIR
from crossbook.journal.recovery import Recovery, full_replay
from crossbook.journal.segments import iter_records


def fingerprint(command: Command) -> int:
    """The driver's identity of an acknowledged command (same function as in crash_driver)."""
    return zlib.crc32(msgspec.msgpack.encode(command))


DRIVER = Path(__file__).with_name("crash_driver.py")


def eventually(check: Callable[[], bool], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.002)


def _start(data: Path, acks: Path, seed: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(DRIVER), str(data), str(acks), "--seed", str(seed), *extra],
        stdout=subprocess.PIPE,
        text=True,
    )


def _ready(process: subprocess.Popen[str]) -> Recovery:
    stdout: IO[str] | None = process.stdout
    assert stdout is not None
    line = stdout.readline()
    assert line.startswith("ready "), f"driver did not start: {line!r}"
    return msgspec.json.decode(line.removeprefix("ready "), type=Recovery)


def _acks(path: Path) -> dict[int, int]:
    if not path.exists():
        return {}
    pairs = (
        line.split() for line in path.read_text().splitlines() if line.endswith(tuple("0123456789"))
    )
    return {int(seq): int(crc) for seq, crc in pairs}


def _check_acknowledged(data: Path, acks: dict[int, int]) -> tuple[str, int]:
    engine, state = full_replay(data / JOURNAL_DIR, Exchange)
    journaled = {r.seq: fingerprint(r.command) for r in iter_records(state)}
    missing = [seq for seq in acks if journaled.get(seq) != acks[seq]]
    assert not missing, f"acknowledged but not journaled: {missing[:10]}"
    return engine.state_hash(), state.last_seq


def _rounds() -> int:
    return int(os.environ.get("CROSSBOOK_CRASH_ROUNDS", "5"))


def _crash_loop(tmp_path: Path, rounds: int, seed: int) -> None:
    rng = random.Random(seed)
    data, acks_path = tmp_path / "node", tmp_path / "acks.txt"
    expected_hash, expected_seq = Exchange().state_hash(), 0
    for round_number in range(rounds):
        process = _start(data, acks_path, seed * 1000 + round_number)
        try:
            recovery = _ready(process)
            assert recovery.last_seq == expected_seq
            assert recovery.state_hash == expected_hash
            floor = len(_acks(acks_path))
            target = floor + rng.randint(1, 1500)
            eventually(lambda target=target: len(_acks(acks_path)) >= target)  # type: ignore[misc]
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
            if process.stdout is not None:
                process.stdout.close()
        acks = _acks(acks_path)
        expected_hash, expected_seq = _check_acknowledged(data, acks)
        assert expected_seq >= max(acks)
    process = _start(data, acks_path, 0)
    try:
        recovery = _ready(process)
        assert (recovery.last_seq, recovery.state_hash) == (expected_seq, expected_hash)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_sigkill_under_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    _crash_loop(tmp_path, _rounds(), seed=11)


@pytest.mark.slow
def test_twenty_sigkills_in_a_row(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if "slow" not in str(request.config.getoption("markexpr")):
        pytest.skip("the full crash loop runs with -m slow")
    _crash_loop(tmp_path, 20, seed=23)


def test_a_real_write_error_stops_acknowledgements(tmp_path: Path) -> None:
    data, acks_path = tmp_path / "node", tmp_path / "acks.txt"
    process = _start(
        data, acks_path, 5, "--fsize-limit", "200000", "--segment-bytes", "10000000",
        "--snapshot-every", "0",
    )  # fmt: skip
    try:
        _ready(process)
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 3, out
    assert out.startswith("unhealthy ")
    assert "File too large" in out
    last_durable = int(out.split()[1])
    acks = _acks(acks_path)
    assert acks
    assert max(acks) <= last_durable
    _, journal_end = _check_acknowledged(data, acks)
    assert journal_end >= last_durable
