"""The retry policy as a pure state machine: what each kind of call may do after each kind
of failure, step by step."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import msgspec
import pytest

from crossbook.client import api
from crossbook.client.calls import (
    Answer,
    Call,
    Failure,
    Outcome,
    RetryPolicy,
    Send,
    Sleep,
    Step,
    plan,
    sign,
)
from crossbook.client.errors import (
    OutcomeUnknownError,
    RateLimitedError,
    RejectedError,
    TransportError,
    UnavailableError,
)
from crossbook.domain.rejects import Reject
from crossbook.gateway.auth import sign as server_sign

POLICY = RetryPolicy(attempts=3, backoff=0.1, max_wait=2.0)
ORDER = {"order_id": 5, "client_order_id": "c-1", "symbol": "BTC-USDT", "side": "buy",
         "type": "limit", "status": "new", "time_in_force": "GTC", "quantity": "1",
         "price": "1", "quote_quantity": None, "stop_price": None, "filled_quantity": "0",
         "post_only": False, "iceberg_quantity": None, "stp": "none", "expire_time": None,
         "created_time": 1, "updated_time": 1}


def ok(body: Any = ORDER, status: int = 200) -> Answer:
    return Answer(status, msgspec.json.encode(body))


def error(status: int, code: Reject, retry_after: float | None = None) -> Answer:
    return Answer(status, msgspec.json.encode({"code": int(code), "message": "no"}), retry_after)


LOST = Failure("ReadError", sent=True)
REFUSED = Failure("ConnectError", sent=False)


def drive(call: Call[Any], outcomes: list[Outcome]) -> tuple[Any, list[Step]]:
    steps: list[Step] = []
    gen: Generator[Step, Outcome, Any] = plan(call, POLICY)
    feed = iter(outcomes)
    outcome: Outcome = None
    try:
        while True:
            step = gen.send(outcome)
            steps.append(step)
            outcome = None if isinstance(step, Sleep) else next(feed)
    except StopIteration as done:
        return done.value, steps


def sends(steps: list[Step]) -> list[str]:
    return [f"{s.call.method} {s.call.path}" for s in steps if isinstance(s, Send)]


def test_signature_matches_the_gateway() -> None:
    args = (1700000000000, "POST", "/v1/orders?symbol=BTC-USDT", b'{"a":1}')
    assert sign("s3cret", *args) == server_sign("s3cret", *args)


def test_reads_retry_any_transport_failure_then_give_up() -> None:
    value, steps = drive(api.depth("BTC-USDT"), [LOST, REFUSED, ok(
        {"symbol": "BTC-USDT", "last_update_id": 3, "bids": [], "asks": []})])
    assert value.last_update_id == 3
    assert [s.seconds for s in steps if isinstance(s, Sleep)] == [0.1, 0.2]
    with pytest.raises(TransportError):
        drive(api.depth("BTC-USDT"), [LOST, LOST, LOST])


def test_lost_order_answer_is_looked_up_by_client_id_before_resending() -> None:
    call = api.place_order("BTC-USDT", "buy", "limit", "1", "1", client_order_id="c-1")
    value, steps = drive(call, [LOST, ok()])
    assert value.order_id == 5
    assert sends(steps) == ["POST /v1/orders", "GET /v1/orders/client/c-1"]


def test_order_not_found_is_sent_again_and_a_duplicate_answer_looks_it_up() -> None:
    call = api.place_order("BTC-USDT", "buy", "limit", "1", "1", client_order_id="c-1")
    _, steps = drive(call, [LOST, error(404, Reject.UNKNOWN_ORDER), ok(status=201)])
    assert sends(steps) == ["POST /v1/orders", "GET /v1/orders/client/c-1", "POST /v1/orders"]
    value, steps = drive(call, [LOST, error(404, Reject.UNKNOWN_ORDER),
                                error(409, Reject.DUPLICATE_CLIENT_ORDER_ID), ok()])
    assert value.client_order_id == "c-1"
    assert sends(steps)[-1] == "GET /v1/orders/client/c-1"


def test_generated_client_ids_are_unique() -> None:
    first = api.place_order("BTC-USDT", "buy", "market", "1").body.client_order_id
    second = api.place_order("BTC-USDT", "buy", "market", "1").body.client_order_id
    assert first != second
    assert first.startswith("sdk-")


def test_unsafe_calls_are_never_resent_once_sent() -> None:
    with pytest.raises(OutcomeUnknownError):
        drive(api.create_api_key(1), [LOST])
    value, _ = drive(api.create_api_key(1), [REFUSED, ok(
        {"key": "k", "account": 1, "permissions": ["read"], "label": "", "secret": "s"})])
    assert value.secret == "s"


def test_throttling_and_rate_limits() -> None:
    value, _ = drive(api.open_orders(), [error(503, Reject.GATEWAY_THROTTLED), ok([])])
    assert value == []
    _, steps = drive(api.open_orders(), [error(429, Reject.GATEWAY_RATE_LIMITED, 1.5), ok([])])
    assert Sleep(1.5) in steps
    with pytest.raises(RateLimitedError):
        drive(api.open_orders(), [error(429, Reject.GATEWAY_RATE_LIMITED, 30)])
    with pytest.raises(UnavailableError):
        drive(api.open_orders(), [error(503, Reject.GATEWAY_UNAVAILABLE)])


def test_refusals_raise_at_once_with_their_code() -> None:
    with pytest.raises(RejectedError) as caught:
        drive(api.place_order("BTC-USDT", "buy", "limit", "1", "1"),
              [error(400, Reject.INSUFFICIENT_FUNDS)])
    assert caught.value.code is Reject.INSUFFICIENT_FUNDS
    assert caught.value.reject is Reject.INSUFFICIENT_FUNDS
    assert "INSUFFICIENT_FUNDS (2001)" in str(caught.value)


def test_query_strings_are_signed_as_sent() -> None:
    call = api.fills("BTC-USDT", 10)
    assert call.target == "/v1/fills?symbol=BTC-USDT&limit=10"
    assert api.fills().target == "/v1/fills?limit=100"
