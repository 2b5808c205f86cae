"""Rate-limit windows, and the sequencer's refusals as 503 with a code."""

from __future__ import annotations

import asyncio

import pytest

from crossbook.domain import commands as cmd
from crossbook.domain.values import AccountId
from crossbook.gateway.context import GatewayContext
from crossbook.gateway.http import ApiError
from crossbook.gateway.limits import LimitConfig, RateLimiter
from crossbook.gateway.views import GatewayViews
from crossbook.marketdata.views import MarketData
from crossbook.sequencer.loop import Throttled, Unavailable
from crossbook.sequencer.ports import Applied


def test_weight_window_resets_and_reports_retry_after() -> None:
    now = [60_000 * 100 + 59_500]
    limiter = RateLimiter(LimitConfig(ip_weight_per_minute=10), lambda: now[0])
    assert limiter.charge_ip("1.2.3.4", 6) == [(b"x-cb-used-weight-1m", b"6")]
    with pytest.raises(ApiError) as refused:
        limiter.charge_ip("1.2.3.4", 5)
    assert refused.value.status == 429
    assert refused.value.headers == [(b"retry-after", b"1")]
    assert limiter.charge_ip("5.6.7.8", 10)[0] == (b"x-cb-used-weight-1m", b"10")
    now[0] += 600  # next minute
    assert limiter.charge_ip("1.2.3.4", 10)[0] == (b"x-cb-used-weight-1m", b"10")


def test_order_budgets_and_disabled_limits() -> None:
    limiter = RateLimiter(LimitConfig(key_orders_per_10s=2, key_weight_per_minute=0),
                          lambda: 1_000)
    limiter.charge_key("k", 1, 1)
    headers = dict(limiter.charge_key("k", 1, 1))
    assert headers[b"x-cb-order-count-10s"] == b"2"
    with pytest.raises(ApiError):
        limiter.charge_key("k", 1, 1)
    assert limiter.charge_key("k", 500, 0)  # weight is unlimited, reads pass


class _Bus:
    def __init__(self, error: Exception | None, later: Exception | None = None) -> None:
        self.error, self.later = error, later

    @property
    def healthy(self) -> bool:
        return self.error is None

    def submit(self, command: cmd.Command) -> asyncio.Future[Applied]:
        if self.error is not None:
            raise self.error
        future: asyncio.Future[Applied] = asyncio.get_running_loop().create_future()
        future.set_exception(self.later or RuntimeError())
        return future


@pytest.mark.parametrize(("bus", "code"), [
    (_Bus(Throttled("full")), 10001),
    (_Bus(Unavailable("stopped")), 10002),
    (_Bus(None, Unavailable("journal failed")), 10002),
])
def test_sequencer_refusals_are_503_with_a_code(bus: _Bus, code: int) -> None:
    context = GatewayContext(bus=bus, views=GatewayViews(), market=MarketData(),
                             limits=RateLimiter(LimitConfig(), lambda: 0))

    async def run() -> None:
        await context.execute(cmd.CancelAllOrders(AccountId(1), "BTC-USDT"))

    with pytest.raises(ApiError) as refused:
        asyncio.run(run())
    assert (refused.value.status, refused.value.code) == (503, code)
