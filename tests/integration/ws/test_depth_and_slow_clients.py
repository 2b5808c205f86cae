"""Depth sync under random load rebuilds the book exactly; a stalled client is conflated and
then dropped while a healthy one keeps receiving."""

from __future__ import annotations

import json
import random
import socket
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from crossbook.protocol.localbook import DiffResult, LocalBook, SnapshotResult
from tests.integration.ws.conftest import UNLIMITED, login_message, recv_json, recv_until, ws
from tests.support.node import NodeProcess

Book = LocalBook[Decimal, Decimal]


def _levels(rows: list[list[str]]) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(p), Decimal(q)) for p, q in rows]


def _snapshot(node: NodeProcess) -> Any:
    return node.http.get("/v1/depth", params={"symbol": "BTC-USDT", "limit": 5000}).json()


def _random_orders(node: NodeProcess, keys: list[tuple[str, str]], count: int,
                   rng: random.Random) -> None:
    for _ in range(count):
        key = rng.choice(keys)
        side = rng.choice(("buy", "sell"))
        price = f"{rng.randint(29_990, 30_010)}.00"
        if rng.random() < 0.15:
            node.signed("DELETE", "/v1/orders?symbol=BTC-USDT", key=key[0], secret=key[1])
            continue
        node.signed("POST", "/v1/orders", {
            "symbol": "BTC-USDT", "side": side, "type": "limit", "price": price,
            "quantity": f"0.{rng.randint(1, 50):03d}", "time_in_force": rng.choice(
                ("GTC", "GTC", "IOC")),
        }, key=key[0], secret=key[1])


def test_depth_sync_rebuilds_the_book_exactly_under_random_load(ws_node: NodeProcess) -> None:
    rng = random.Random(7)
    keys = [ws_node.trader(200 + i, {"BTC": "100", "USDT": "10000000"}) for i in range(3)]
    _random_orders(ws_node, keys, 40, rng)  # a book that is not empty when the sync starts
    with ws(f"{ws_node.ws_url}/ws") as binance, ws(f"{ws_node.ws_url}/v1/ws") as native:
        binance.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@depth@100ms"],
                                 "id": 1}))
        assert recv_json(binance) == {"result": None, "id": 1}
        native.send(json.dumps({"op": "subscribe", "id": 1, "channel": "depth",
                                "symbol": "BTC-USDT"}))
        assert recv_json(native) == {"id": 1, "result": "subscribed"}
        first = recv_json(native)
        assert first["type"] == "snapshot"
        native_book: Book = LocalBook()
        native_book.apply_snapshot(first["last_update_id"], _levels(first["bids"]),
                                   _levels(first["asks"]))
        _random_orders(ws_node, keys, 60, rng)
        binance_book: Book = LocalBook()
        snap = _snapshot(ws_node)
        assert binance_book.apply_snapshot(
            snap["last_update_id"], _levels(snap["bids"]), _levels(snap["asks"])
        ) is SnapshotResult.SYNCED
        _random_orders(ws_node, keys, 150, rng)
        final = _snapshot(ws_node)
        target = final["last_update_id"]
        for conn, book, binance_shape in ((binance, binance_book, True),
                                          (native, native_book, False)):
            deadline = time.monotonic() + 10
            while book.last_update_id < target and time.monotonic() < deadline:
                m = recv_json(conn)
                if binance_shape:
                    result = book.on_diff(m["U"], m["u"], _levels(m["b"]), _levels(m["a"]))
                else:
                    result = book.on_diff(m["first_update_id"], m["last_update_id"],
                                          _levels(m["bids"]), _levels(m["asks"]))
                assert result in (DiffResult.APPLIED, DiffResult.DROPPED), m
            assert book.last_update_id == target
            assert book.bids() == _levels(final["bids"])
            assert book.asks() == _levels(final["asks"])


@pytest.fixture
def tight_node(tmp_path: Path) -> Iterator[NodeProcess]:
    node = NodeProcess(tmp_path / "data", UNLIMITED)
    node.start_env.update({
        "CROSSBOOK_WS_WRITE_HIGH_WATER": "8192", "CROSSBOOK_WS_MAX_QUEUE": "200",
        "CROSSBOOK_WS_MAX_STALL_S": "1.5", "CROSSBOOK_WS_CLOSE_GRACE_S": "0.2",
        "CROSSBOOK_WS_SEND_BUFFER": "4096",
    })
    node.start()
    try:
        yield node
    finally:
        node.close()


def _stalled_client(url_port: int, path: str) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", url_port))
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .encode()
    )
    assert b"101" in sock.recv(1024)
    payload = json.dumps({"op": "subscribe", "channel": "depth", "symbol": "BTC-USDT"}).encode()
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)  # zero mask
    return sock  # and never read again


def test_a_stalled_client_is_conflated_then_dropped_while_a_healthy_one_keeps_up(
    tight_node: NodeProcess,
) -> None:
    node = tight_node
    key, secret = node.trader(300, {"BTC": "1000", "USDT": "100000000"})
    stalled = _stalled_client(node.ws_port, "/v1/ws")
    try:
        with ws(f"{node.ws_url}/v1/ws") as healthy, ws(f"{node.ws_url}/v1/ws") as trader:
            healthy.send(json.dumps({"op": "subscribe", "id": 1, "channel": "depth",
                                     "symbol": "BTC-USDT"}))
            recv_json(healthy)
            recv_json(healthy)
            trader.send(login_message(key, secret))
            assert "result" in recv_json(trader)
            received = 0
            dropped = False
            for round_ in range(60):
                for i in range(100):
                    trader.send(json.dumps({"op": "place", "id": i, "order": {
                        "symbol": "BTC-USDT", "side": "buy", "type": "limit",
                        "price": f"{10000 + (round_ * 100 + i) % 5000}.00",
                        "quantity": "0.001"}}))
                recv_until(trader, lambda m: m.get("id") == 99, timeout=10)
                while True:
                    try:
                        recv_json(healthy, timeout=0.05)
                        received += 1
                    except TimeoutError:
                        break
                stats = node.http.get("/stats").json()
                if stats["dropped_clients"] >= 1:
                    dropped = True
                    break
            assert stats["conflated"] > 0, stats
            assert dropped, stats
            before = received
            trader.send(json.dumps({"op": "place", "id": "last", "order": {
                "symbol": "BTC-USDT", "side": "buy", "type": "limit", "price": "9000.00",
                "quantity": "0.001"}}))
            recv_until(healthy, lambda m: m.get("type") == "update", timeout=5)
            assert before > 0
            clients = node.http.get("/clients").json()
            assert all(c["kind"] == "native" for c in clients)
    finally:
        stalled.close()
