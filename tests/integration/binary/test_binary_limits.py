"""Per-key order rate limits on the binary gateway of a real node (`crossbook serve`, Unix
socket): REST and binary orders of one key count together, an over-limit `NewOrder` gets a
`RejectedReport` `GATEWAY_RATE_LIMITED` at once and never reaches the journal, the session
stays open, and orders under the limit (or in the next window) still work."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from crossbook.client.binary import BinaryClient
from crossbook.domain.enums import OrderType, Side
from crossbook.domain.rejects import Reject
from crossbook.protocol.binary_messages import AcceptedReport, CanceledReport, RejectedReport
from tests.integration.binary.test_binary_gateway import CONFIG, FUNDS
from tests.support.journal_reads import journaled_orders
from tests.support.node import NodeProcess

ORDERS_PER_10S = 5
LIMITED = CONFIG.split("[limits]")[0] + f"""[limits]
key_weight_per_minute = 100000
key_orders_per_10s = {ORDERS_PER_10S}
key_orders_per_day = 100000
ip_weight_per_minute = 0
"""
REST_ORDER = {"symbol": "BTC-USDT", "type": "limit", "side": "buy", "quantity": "0.01",
              "price": "40000"}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    process = NodeProcess(tmp_path_factory.mktemp("binlim") / "d", LIMITED)
    process.start()
    yield process
    process.close()


async def start_of_a_window(margin_s: float = 4.0) -> None:
    """Wait, if needed, so at least `margin_s` of the current 10-second window is left."""
    into = time.time() % 10
    if into > 10 - margin_s:
        await next_window()


async def next_window() -> None:
    """Sleep (serving the session's heartbeats) until the next 10-second window starts."""
    await asyncio.sleep(10 - time.time() % 10 + 0.05)


def test_binary_and_rest_orders_share_the_key_budget(node: NodeProcess) -> None:
    account = 21
    key, secret = node.trader(account, FUNDS)

    async def scenario() -> None:
        path = str(node.data_dir / "binary.sock")
        async with BinaryClient(key, secret.encode(), path=path) as client:
            await start_of_a_window()
            for _ in range(2):
                rest = node.signed("POST", "/v1/orders", REST_ORDER, key=key, secret=secret)
                assert rest.status_code == 201, rest.text
            answers = await asyncio.gather(*(
                client.new_order("BTC-USDT", Side.BUY, OrderType.LIMIT, qty=1_000,
                                 price=4_000_000 + i, client_order_id=f"lim-{i}")
                for i in range(5)))
            accepted = [a for a in answers if isinstance(a, AcceptedReport)]
            refused = [a for a in answers if isinstance(a, RejectedReport)]
            assert len(accepted) == ORDERS_PER_10S - 2
            assert len(refused) == 2
            for report in refused:
                assert report.code == Reject.GATEWAY_RATE_LIMITED
                assert "orders per 10 s" in report.message
            # a refusal names the client order id of the request it answers
            assert sorted(r.client_order_id for r in refused) == ["lim-3", "lim-4"]
            rest = node.signed("POST", "/v1/orders", REST_ORDER, key=key, secret=secret)
            assert (rest.status_code, rest.json()["code"]) == (429, Reject.GATEWAY_RATE_LIMITED)
            # the session stays open: a cancel (weighed, not an order) still goes through
            canceled = await client.cancel("BTC-USDT", accepted[0].order_id)
            assert isinstance(canceled, CanceledReport)
            assert journaled_orders(node.data_dir, account) == ORDERS_PER_10S
            await next_window()
            again = await client.new_order("BTC-USDT", Side.BUY, OrderType.LIMIT, qty=1_000,
                                           price=4_000_100)
            assert isinstance(again, AcceptedReport)
            assert client.error is None
        assert journaled_orders(node.data_dir, account) == ORDERS_PER_10S + 1

    asyncio.run(scenario())


def test_keys_are_limited_separately_and_under_the_limit_nothing_changes(
        node: NodeProcess) -> None:
    first_key, first_secret = node.trader(22, FUNDS)
    second_key, second_secret = node.trader(23, FUNDS)

    async def scenario() -> None:
        path = str(node.data_dir / "binary.sock")
        async with BinaryClient(first_key, first_secret.encode(), path=path) as first, \
                BinaryClient(second_key, second_secret.encode(), path=path) as second:
            await start_of_a_window()
            answers = await asyncio.gather(*(
                client.new_order("BTC-USDT", Side.SELL, OrderType.LIMIT, qty=1_000,
                                 price=6_000_000 + i)
                for client in (first, second) for i in range(ORDERS_PER_10S)))
            assert all(isinstance(a, AcceptedReport) for a in answers), answers
        assert journaled_orders(node.data_dir, 22) == ORDERS_PER_10S
        assert journaled_orders(node.data_dir, 23) == ORDERS_PER_10S

    asyncio.run(scenario())
