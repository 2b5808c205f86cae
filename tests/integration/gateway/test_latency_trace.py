"""`CROSSBOOK_LATENCY_TRACE`: a node started with it writes, when it stops, the timestamps of
each order request (read, submitted, resumed after durability, written, in that order), of
each group commit and its hand-offs between the loop and the commit thread, and of its
collections, and its history process writes the times of its
database writes beside it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.node import NodeProcess

ORDER = {"symbol": "BTC-USDT", "type": "limit", "side": "buy", "quantity": "0.001",
         "price": "10000"}


def test_a_traced_node_writes_its_timeline_on_stop(tmp_path: Path) -> None:
    trace = tmp_path / "trace.json"
    node = NodeProcess(tmp_path / "data")
    node.start_env["CROSSBOOK_LATENCY_TRACE"] = str(trace)
    node.start()
    try:
        key, secret = node.trader(7, {"USDT": "100000"})
        for _ in range(3):
            placed = node.signed("POST", "/v1/orders", ORDER, key=key, secret=secret)
            assert placed.status_code == 201, placed.text
        assert node.stop() == 0
    finally:
        node.close()
    found = json.loads(trace.read_text())
    assert len(found["requests"]) == 3
    for port, received, submitted, resumed, written, status in found["requests"]:
        assert port > 0
        assert 0 < received <= submitted <= resumed <= written
        assert status == 201
    assert sum(size for _, _, size in found["batches"]) >= 3
    assert sum(size for *_, size in found["turns"]) >= 3  # each batch's hand-offs, in order
    for turn_at, began, ended, released, _ in found["turns"]:
        assert 0 < turn_at <= began <= ended <= released
    for _, _, submitted, resumed, _, _ in found["requests"]:  # each request's batch
        assert any(submitted <= turn[0] and turn[3] <= resumed for turn in found["turns"])
    assert {"gcs", "lags"} <= found.keys()
    writes = json.loads(Path(f"{trace}.history").read_text())
    assert writes
    assert all(start <= end for start, end, _ in writes)
