"""The REST SDK against a running node: every call, sync and async; coded errors; retries
that never apply an order twice when an answer is lost."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest

from crossbook.client import (
    AsyncClient,
    Client,
    OutcomeUnknownError,
    RejectedError,
    RetryPolicy,
    TransportError,
)
from crossbook.client.rest import AsyncClient as RestAsyncClient
from crossbook.domain.rejects import Reject
from tests.e2e.clients.conftest import Trader
from tests.support.node import free_port


class LoseAnswers(httpx.BaseTransport):
    """Forwards to the node, then loses the answers of the first `count` matching requests
    (the request was applied; the client sees a broken connection)."""

    def __init__(self, method: str, count: int = 1) -> None:
        self.inner = httpx.HTTPTransport()
        self.method, self.count = method, count
        self.sent: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(f"{request.method} {request.url.raw_path.decode()}")
        response = self.inner.handle_request(request)
        if request.method == self.method and self.count > 0:
            self.count -= 1
            response.read()
            response.close()
            raise httpx.ReadError("connection reset after the request", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


def test_public_market_data(url: str, make_trader: Callable[..., Trader]) -> None:
    t = make_trader()
    with Client(url, api_key=t.key, secret=t.secret) as c:
        assert c.server_time().time > 0
        assert c.ready().ready
        assert {a.code for a in c.assets()} >= {"BTC", "ETH", "USDT"}
        btc = next(i for i in c.instruments() if i.symbol == "BTC-USDT")
        assert (btc.tick_size, btc.lot_size, btc.status) == ("0.01", "0.00001", "trading")
        c.place_order("ETH-USDT", "sell", "limit", "1", "3100")
        c.place_order("ETH-USDT", "buy", "market", "0.4")
        depth = c.depth("ETH-USDT", 5)
        assert depth.asks[0] == ("3100.00", "0.6000")
        trade = c.trades("ETH-USDT", 1)[0]
        assert (trade.price, trade.quantity, trade.taker_side) == ("3100.00", "0.4000", "buy")
        assert c.ticker("ETH-USDT").last == "3100.00"
        candle = c.candles("ETH-USDT", "1m", 1)[-1]
        assert candle.close == "3100.00"


def test_orders_account_and_fills_async(url: str, make_trader: Callable[..., Trader]) -> None:
    maker, taker = make_trader(), make_trader()

    async def scenario() -> None:
        async with AsyncClient(url, api_key=maker.key, secret=maker.secret) as m, \
                AsyncClient(url, api_key=taker.key, secret=taker.secret) as t:
            order = await m.place_order("BTC-USDT", "sell", "limit", Decimal("0.5"), 61000,
                                        client_order_id="ask-1")
            assert (order.status, order.client_order_id, order.price) == (
                "new", "ask-1", "61000.00")
            assert [o.order_id for o in await m.open_orders("BTC-USDT")] == [order.order_id]
            amended = await m.amend_order(client_order_id="ask-1", price="60900")
            assert amended.price == "60900.00"
            got = await m.get_order(order.order_id)
            assert got.price == "60900.00"
            taken = await t.place_order("BTC-USDT", "buy", "limit", "0.2", "61000",
                                        time_in_force="IOC")
            assert taken.status == "filled"
            assert taken.fills is not None
            assert taken.fills[0].price == "60900.00"
            assert [f.liquidity for f in await m.fills("BTC-USDT")] == ["maker"]
            balances = {b.asset: b for b in await m.balances()}
            assert balances["BTC"].locked == "0.30000000"
            info = await m.account()
            assert (info.account, info.permissions) == (maker.account, ["read", "trade"])
            canceled = await m.cancel_order(order.order_id)
            assert canceled.status == "canceled"
            await m.place_order("BTC-USDT", "buy", "limit", "0.1", "50000")
            await m.place_order("BTC-USDT", "buy", "limit", "0.1", "50001")
            assert len((await m.cancel_all("BTC-USDT")).canceled) == 2
            history = await m.order_history("BTC-USDT")
            assert [o.status for o in history][:3] == ["canceled", "canceled", "canceled"]
            assert await m.sync_time() == m.time_offset_ms

    asyncio.run(scenario())


def test_admin_calls(admin: Client) -> None:
    created = admin.create_account(9001, 1, 5)
    assert (created.maker_fee_bps, created.taker_fee_bps) == (1, 5)
    assert 9001 in {a.account for a in admin.list_accounts()}
    assert admin.set_fees(9001, 0, 2).taker_fee_bps == 2
    done = admin.deposit(9001, "USDT", "100", tx_id="t-1")
    assert done.balance.free == "100.00000000"
    assert admin.withdraw(9001, "USDT", "40").balance.free == "60.00000000"
    key = admin.create_api_key(9001, ["read"], "reader")
    assert key.secret
    assert key.key in {k.key for k in admin.list_api_keys()}
    assert admin.revoke_api_key(key.key).key == key.key
    assert admin.add_asset("DOGE", 8).precision == 8
    doge = admin.add_instrument("DOGE-USDT", "DOGE", "USDT", "0.00001", "1", min_notional="1")
    assert doge.symbol == "DOGE-USDT"
    assert admin.halt("DOGE-USDT").status == "halted"
    assert admin.resume("DOGE-USDT").status == "trading"


def test_errors_carry_the_server_code(url: str, admin: Client,
                                      make_trader: Callable[..., Trader]) -> None:
    poor = make_trader({"USDT": "10"})
    with Client(url, api_key=poor.key, secret=poor.secret) as c:
        with pytest.raises(RejectedError) as funds:
            c.place_order("BTC-USDT", "buy", "limit", "1", "60000")
        assert (funds.value.status, funds.value.code) == (400, Reject.INSUFFICIENT_FUNDS)
        with pytest.raises(RejectedError) as symbol:
            c.place_order("NOPE-USDT", "buy", "limit", "1", "1")
        assert symbol.value.code is Reject.UNKNOWN_SYMBOL
        with pytest.raises(RejectedError) as unknown:
            c.get_order(987654321)
        assert (unknown.value.status, unknown.value.code) == (404, Reject.UNKNOWN_ORDER)
        with pytest.raises(RejectedError) as forbidden:
            c.list_accounts()
        assert forbidden.value.code is Reject.GATEWAY_FORBIDDEN
    with Client(url, api_key=poor.key, secret="wrong") as c:
        with pytest.raises(RejectedError) as bad:
            c.balances()
        assert (bad.value.status, bad.value.code) == (401, Reject.GATEWAY_UNAUTHORIZED)
    admin.deposit(poor.account, "USDT", "1", tx_id="same")
    with pytest.raises(RejectedError) as twice:
        admin.deposit(poor.account, "USDT", "1", tx_id="same")
    assert twice.value.code is Reject.DUPLICATE_TRANSACTION


def test_lost_answer_to_an_order_never_places_it_twice(
    url: str, make_trader: Callable[..., Trader]
) -> None:
    t = make_trader()
    lose = LoseAnswers("POST")
    with Client(url, api_key=t.key, secret=t.secret, transport=lose) as c:
        order = c.place_order("BTC-USDT", "buy", "limit", "0.1", "40000")
        assert [o.order_id for o in c.open_orders("BTC-USDT")] == [order.order_id]
        assert lose.sent[:2] == ["POST /v1/orders", f"GET /v1/orders/client/"
                                 f"{order.client_order_id}"]
        # a market order fills at once and frees its client id: the lookup still finds it
        c.place_order("BTC-USDT", "sell", "limit", "0.1", "40001")
        lose.count = 1
        bought = c.place_order("BTC-USDT", "buy", "market", "0.1")
        assert bought.status == "filled"
        assert len(c.fills("BTC-USDT")) == 2


def test_lost_answers_to_cancel_and_amend(url: str, make_trader: Callable[..., Trader]) -> None:
    t = make_trader()
    with Client(url, api_key=t.key, secret=t.secret) as plain:
        order = plain.place_order("BTC-USDT", "buy", "limit", "0.1", "41000")
    with Client(url, api_key=t.key, secret=t.secret, transport=LoseAnswers("PATCH")) as c:
        assert c.amend_order(order.order_id, price="41001").price == "41001.00"
    with Client(url, api_key=t.key, secret=t.secret, transport=LoseAnswers("DELETE")) as c:
        assert c.cancel_order(order.order_id).status == "canceled"


def test_unsafe_call_with_a_lost_answer_is_not_repeated(url: str, admin: Client) -> None:
    lose = LoseAnswers("POST")
    with Client(url, api_key=admin.api_key, secret=admin.secret, transport=lose) as c, \
            pytest.raises(OutcomeUnknownError):
        c.create_api_key(1)
    assert [s for s in lose.sent if s.startswith("POST")] == ["POST /v1/admin/api-keys"]


def test_unreachable_node_is_a_transport_error() -> None:
    policy = RetryPolicy(attempts=2, backoff=0.01)
    with Client(f"http://127.0.0.1:{free_port()}", retry=policy) as c, \
            pytest.raises(TransportError) as caught:
        c.server_time()
    assert caught.value.sent is False

    async def unreachable() -> None:
        async with RestAsyncClient(f"http://127.0.0.1:{free_port()}", retry=policy) as c:
            await c.instruments()

    with pytest.raises(TransportError):
        asyncio.run(unreachable())
