"""`crossbook bench --target ws` end to end: a short run against a real spawned node.

Each run must answer every request it sent, acknowledge orders, and lose none of them:
every acknowledged order is journaled, every open order on the node was acknowledged, and
the open orders the user events left open are all on the node.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crossbook.cli import main


def _bench(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    out = tmp_path / "result.json"
    code = main(["bench", "--spawn", "--target", "ws", "--symbols", "2", "--duration", "2",
                 "--no-progress", "--out", str(out), *extra])
    printed = json.loads(capsys.readouterr().out)
    result: dict[str, Any] = json.loads(out.read_text())
    assert code == 0, printed
    assert printed["files"][0] == str(out)
    assert all(Path(f).stat().st_size > 0 for f in printed["files"])
    return result


def _no_loss(result: dict[str, Any]) -> None:
    summary, verify = result["summary"], result["verify"]
    assert summary["completed"] == summary["sent"] > 0
    assert summary["throughput_per_s"] > 0
    assert summary["latency_us"]["p50"] > 0
    assert summary["mix"]["new"] > 0
    assert "-1" not in summary["errors_by_code"]  # no request lost with its connection
    assert verify["acked_orders"] > 0
    assert verify["journaled_orders"] >= verify["acked_orders"]
    assert verify["acked_missing_in_journal"] == 0
    assert verify["open_on_node_not_acked"] == 0
    assert verify["open_expected"] > 0  # the user events were followed
    assert verify["open_expected_missing_on_node"] == 0
    assert verify["ws_accounts_not_exact"] == 0


def test_closed_loop_over_websocket_loses_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _bench(tmp_path, capsys, "--connections", "3", "--window", "16")
    _no_loss(result)
    assert result["title"] == "ws, 0 workers, closed loop, 3x16"
    assert result["summary"]["mix"]["cancel"] > 0  # orders were tracked from the user events


def test_open_loop_over_websocket_with_workers_loses_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _bench(tmp_path, capsys, "--workers", "1", "--connections", "2",
                    "--rate", "300")
    _no_loss(result)
    assert result["config"]["workers"] == 1
    assert result["summary"]["completed"] > 300
