"""One `crossbook serve` node per test module, and funded traders made through the SDK."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from crossbook.client import Client
from crossbook.config import DEFAULT_TOML
from tests.support.node import ADMIN_KEY, ADMIN_SECRET, NodeProcess

LIMITS = """
[limits]
key_weight_per_minute = 0
key_orders_per_10s = 0
key_orders_per_day = 0
ip_weight_per_minute = 0
"""
FUNDS = {"USDT": "1000000", "BTC": "100", "ETH": "1000"}
_accounts = itertools.count(100)


@dataclass(frozen=True)
class Trader:
    account: int
    key: str
    secret: str


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    base: Path = tmp_path_factory.mktemp("node")
    process = NodeProcess(base / "data", DEFAULT_TOML + LIMITS)
    process.start()
    try:
        yield process
    finally:
        process.close()


@pytest.fixture(scope="module")
def url(node: NodeProcess) -> str:
    return f"http://127.0.0.1:{node.port}"


@pytest.fixture(scope="module")
def ws_url(node: NodeProcess) -> str:
    return f"{node.ws_url}/v1/ws"


@pytest.fixture
def admin(url: str) -> Iterator[Client]:
    with Client(url, api_key=ADMIN_KEY, secret=ADMIN_SECRET) as client:
        yield client


@pytest.fixture
def make_trader(admin: Client) -> Callable[..., Trader]:
    def make(funds: dict[str, str] | None = None) -> Trader:
        account = next(_accounts)
        admin.create_account(account)
        for asset, amount in (FUNDS if funds is None else funds).items():
            admin.deposit(account, asset, amount)
        created = admin.create_api_key(account, ["read", "trade"], f"test-{account}")
        assert created.secret is not None
        return Trader(account, created.key, created.secret)

    return make
