"""REST clients of the native `/v1` API: `AsyncClient` (asyncio) and `Client` (blocking).

    async with AsyncClient("http://127.0.0.1:8000", api_key=KEY, secret=SECRET) as c:
        order = await c.place_order("BTC-USDT", "buy", "limit", "0.01", "60000")
        await c.cancel_order(order.order_id)

    with Client("http://127.0.0.1:8000", api_key=KEY, secret=SECRET) as c:
        print(c.balances())

Both expose the same methods, one per endpoint (`crossbook.client.api`), returning the
typed wire models of `crossbook.protocol.native` (re-exported by `crossbook.client`).
Signed calls carry the native HMAC headers with a fresh timestamp on every attempt
(`time_offset_ms` corrects a skewed clock; `sync_time()` measures it against the server).
Retries follow `crossbook.client.calls.plan`: reads are retried freely, orders, cancels and
amends only in ways that cannot apply them twice. Errors are `crossbook.client.errors`
exceptions carrying the server's reject code.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Generic, ParamSpec, Self, TypeVar, overload

import httpx

from crossbook.client import api
from crossbook.client.calls import (
    Answer,
    Call,
    Failure,
    Outcome,
    RetryPolicy,
    Send,
    Step,
    plan,
    sign,
)
from crossbook.client.errors import CrossbookError

P = ParamSpec("P")
T = TypeVar("T")
DEFAULT_URL = "http://127.0.0.1:8000"


class endpoint(Generic[P, T]):
    """A class attribute that becomes a method running one `Call` builder."""

    def __init__(self, build: Callable[P, Call[T]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, obj: AsyncClient, owner: Any) -> Callable[P, Awaitable[T]]: ...
    @overload
    def __get__(self, obj: Client, owner: Any) -> Callable[P, T]: ...
    @overload
    def __get__(self, obj: None, owner: Any) -> endpoint[P, T]: ...

    def __get__(self, obj: Any, owner: Any) -> Any:
        if obj is None:
            return self
        build, run = self.build, obj.run

        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return run(build(*args, **kwargs))

        method.__doc__ = self.__doc__
        return method


class _Endpoints:
    server_time = endpoint(api.server_time)
    ready = endpoint(api.ready)
    assets = endpoint(api.assets)
    instruments = endpoint(api.instruments)
    depth = endpoint(api.depth)
    trades = endpoint(api.trades)
    ticker = endpoint(api.ticker)
    candles = endpoint(api.candles)
    account = endpoint(api.account)
    balances = endpoint(api.balances)
    fills = endpoint(api.fills)
    place_order = endpoint(api.place_order)
    get_order = endpoint(api.get_order)
    cancel_order = endpoint(api.cancel_order)
    amend_order = endpoint(api.amend_order)
    open_orders = endpoint(api.open_orders)
    cancel_all = endpoint(api.cancel_all)
    order_history = endpoint(api.order_history)
    create_account = endpoint(api.create_account)
    list_accounts = endpoint(api.list_accounts)
    set_fees = endpoint(api.set_fees)
    deposit = endpoint(api.deposit)
    withdraw = endpoint(api.withdraw)
    create_api_key = endpoint(api.create_api_key)
    list_api_keys = endpoint(api.list_api_keys)
    revoke_api_key = endpoint(api.revoke_api_key)
    add_asset = endpoint(api.add_asset)
    add_instrument = endpoint(api.add_instrument)
    halt = endpoint(api.halt)
    resume = endpoint(api.resume)


class _Base(_Endpoints):
    def __init__(
        self, base_url: str, api_key: str | None, secret: str | None,
        retry: RetryPolicy | None, recv_window_ms: int, time_offset_ms: int,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.secret = secret
        self.retry = retry or RetryPolicy()
        self.recv_window_ms = recv_window_ms
        self.time_offset_ms = time_offset_ms

    def _headers(self, call: Call[Any], content: bytes) -> dict[str, str]:
        headers = {"content-type": "application/json"} if content else {}
        if call.signed:
            if not self.api_key or not self.secret:
                raise CrossbookError(f"{call.method} {call.path} needs an API key and secret")
            ts = time.time_ns() // 1_000_000 + self.time_offset_ms
            headers["x-cb-apikey"] = self.api_key
            headers["x-cb-timestamp"] = str(ts)
            headers["x-cb-recv-window"] = str(self.recv_window_ms)
            headers["x-cb-signature"] = sign(self.secret, ts, call.method, call.target, content)
        return headers

    @staticmethod
    def _answer(response: httpx.Response) -> Answer:
        raw = response.headers.get("retry-after")
        try:
            retry_after = float(raw) if raw is not None else None
        except ValueError:
            retry_after = None
        return Answer(response.status_code, response.content, retry_after)

    @staticmethod
    def _failure(exc: httpx.TransportError) -> Failure:
        unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
        return Failure(f"{type(exc).__name__}: {exc}", sent=not unsent)

    def _offset(self, before: int, server: int, after: int) -> None:
        self.time_offset_ms = server - (before + after) // 2


class AsyncClient(_Base):
    def __init__(
        self, base_url: str = DEFAULT_URL, *, api_key: str | None = None,
        secret: str | None = None, timeout: float = 10.0, retry: RetryPolicy | None = None,
        recv_window_ms: int = 10_000, time_offset_ms: int = 0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, api_key, secret, retry, recv_window_ms, time_offset_ms)
        self.http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout,
                                      transport=transport)

    async def run(self, call: Call[T]) -> T:
        """Send one call under the retry policy; the decoded answer."""
        steps: Generator[Step, Outcome, T] = plan(call, self.retry)
        outcome: Outcome = None
        while True:
            try:
                step = steps.send(outcome)
            except StopIteration as done:
                result: T = done.value
                return result
            if isinstance(step, Send):
                outcome = await self._send(step)
            else:
                await asyncio.sleep(step.seconds)
                outcome = None

    async def _send(self, step: Send) -> Outcome:
        call = step.call
        content = call.content
        try:
            response = await self.http.request(
                call.method, call.target, content=content, headers=self._headers(call, content)
            )
        except httpx.TransportError as exc:
            return self._failure(exc)
        return self._answer(response)

    async def sync_time(self) -> int:
        """Measure the clock offset to the server; the new `time_offset_ms`."""
        before = time.time_ns() // 1_000_000
        server = (await self.server_time()).time
        self._offset(before, server, time.time_ns() // 1_000_000)
        return self.time_offset_ms

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class Client(_Base):
    def __init__(
        self, base_url: str = DEFAULT_URL, *, api_key: str | None = None,
        secret: str | None = None, timeout: float = 10.0, retry: RetryPolicy | None = None,
        recv_window_ms: int = 10_000, time_offset_ms: int = 0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, api_key, secret, retry, recv_window_ms, time_offset_ms)
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    def run(self, call: Call[T]) -> T:
        """Send one call under the retry policy; the decoded answer."""
        steps: Generator[Step, Outcome, T] = plan(call, self.retry)
        outcome: Outcome = None
        while True:
            try:
                step = steps.send(outcome)
            except StopIteration as done:
                result: T = done.value
                return result
            if isinstance(step, Send):
                outcome = self._send(step)
            else:
                time.sleep(step.seconds)
                outcome = None

    def _send(self, step: Send) -> Outcome:
        call = step.call
        content = call.content
        try:
            response = self.http.request(
                call.method, call.target, content=content, headers=self._headers(call, content)
            )
        except httpx.TransportError as exc:
            return self._failure(exc)
        return self._answer(response)

    def sync_time(self) -> int:
        before = time.time_ns() // 1_000_000
        server = self.server_time().time
        self._offset(before, server, time.time_ns() // 1_000_000)
        return self.time_offset_ms

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
