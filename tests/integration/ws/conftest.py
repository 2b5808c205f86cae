"""Small synchronous WebSocket helpers and a node to point them at.

`ws_node` starts `crossbook serve` (fsync) once per module;
`connect(url)` opens a real client (the `websockets` library, a different implementation from
the server's) and `recv_json` reads one message with a timeout.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from crossbook.config import DEFAULT_TOML
from tests.support.node import NodeProcess

UNLIMITED = DEFAULT_TOML + "\n[limits]\nkey_orders_per_10s = 0\nkey_orders_per_day = 0\n"
"""The default instruments with no order rate limits per key (load from one connection)."""


@pytest.fixture(scope="module")
def ws_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    node = NodeProcess(tmp_path_factory.mktemp("ws") / "data", UNLIMITED)
    node.start()
    try:
        yield node
    finally:
        node.close()


def ws(url: str) -> ClientConnection:
    return connect(url, open_timeout=5, close_timeout=2, max_size=1 << 24)


def recv_json(conn: ClientConnection, timeout: float = 5.0) -> Any:
    return json.loads(conn.recv(timeout=timeout))


def recv_until(conn: ClientConnection, match: Callable[[Any], bool],
               timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        message = recv_json(conn, max(0.01, deadline - time.monotonic()))
        if match(message):
            return message


def login_message(key: str, secret: str, request_id: Any = 1) -> str:
    from crossbook.gateway.auth import sign

    ts = time.time_ns() // 1_000_000
    return json.dumps({"op": "login", "id": request_id, "key": key, "timestamp": ts,
                       "signature": sign(secret, ts, "GET", "/v1/ws", b"")})


