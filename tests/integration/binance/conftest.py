"""A node for the Binance dialect tests, and the real clients pointed at it.

The clients are configured exactly as the compatibility spec's first section says:
binance-connector with `base_url`; ccxt's `binance` with its spot REST URLs on the node,
every other API family rewritten to the node too (a stray call then fails visibly with 404),
and markets limited to spot so that loading them calls no futures or margin endpoint.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from crossbook.config import DEFAULT_TOML
from tests.support.node import NodeProcess

ORDERS_PER_10S = 60
LIMITS = f"""
[limits]
key_weight_per_minute = 1000000
key_orders_per_10s = {ORDERS_PER_10S}
key_orders_per_day = 1000000
ip_weight_per_minute = 10000000
"""
FUNDS = {"USDT": "1000000", "BTC": "100", "ETH": "100"}

Trader = tuple[str, str]


@pytest.fixture(scope="package")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    base: Path = tmp_path_factory.mktemp("binance-node")
    process = NodeProcess(base / "data", DEFAULT_TOML + LIMITS)
    process.start()
    try:
        yield process
    finally:
        process.close()


@pytest.fixture(scope="package")
def base_url(node: NodeProcess) -> str:
    return f"http://127.0.0.1:{node.port}"


_accounts = itertools.count(7_000)


@pytest.fixture
def new_trader(node: NodeProcess) -> Callable[..., Trader]:
    """A fresh funded account (so tests do not see each other's orders) and its key."""

    def make(funds: dict[str, str] | None = None) -> Trader:
        return node.trader(next(_accounts), FUNDS if funds is None else funds)

    return make


def connector(base_url: str, trader: Trader | None = None) -> Any:
    from binance.spot import Spot

    if trader is None:
        return Spot(base_url=base_url)
    return Spot(trader[0], trader[1], base_url=base_url)


def ccxt_binance(base_url: str, trader: Trader | None = None) -> Any:
    import ccxt

    config: dict[str, Any] = {
        # ccxt's own client-side throttle spaces calls by Binance's weights (up to 2 s for
        # one unscoped open-orders call); the node's limits are what these tests exercise
        "enableRateLimit": False,
        "options": {
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
        },
    }
    if trader is not None:
        config["apiKey"], config["secret"] = trader
    exchange = ccxt.binance(config)
    api = exchange.urls["api"]
    for name, url in list(api.items()):
        if not isinstance(url, str):
            continue
        api[name] = base_url + ("/api/v3" if name in ("public", "private") else urlparse(url).path)
    exchange.options["fetchOpenOrders"] = {
        **exchange.options.get("fetchOpenOrders", {}), "warnWithoutSymbol": False,
    }
    return exchange
