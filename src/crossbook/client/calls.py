"""Requests as values, and the retry policy as a pure state machine both clients drive.

Contract:

- A `Call[T]` is one REST request: method, path, query, JSON body, whether it is signed, the
  type its answer decodes to, and its `Safety`, which alone decides what a retry may do:
  - `IDEMPOTENT` (reads): resent after any transport failure;
  - `DEDUPED` (orders with a client order id, cancels, amends, deposits with a `tx_id`): the
    server refuses a repeat with a conflict code (`conflicts`). After an attempt whose
    outcome is unknown (the connection broke after the request was sent, or a timeout), the
    policy first runs `lookup` (e.g. the order by client id): found, it is the answer; not
    found, the request is sent again; and a conflict answer to a resend runs `lookup` too;
  - `UNSAFE` (creating an API key): never resent once it may have arrived
    (`OutcomeUnknownError`).
- Every call is retried (up to `RetryPolicy.attempts`, with exponential backoff) when the
  request never left (connection refused) or the node answered 503 `GATEWAY_THROTTLED`
  (the command was not taken), and after 429 when `Retry-After` is at most `max_wait`.
- `plan(call, policy)` is a generator: it yields `Send(call)` or `Sleep(seconds)` and is
  sent back an `Answer` or a `Failure`; its return value is the decoded result. It raises
  `ApiError` subclasses with the server's code, `TransportError` or `OutcomeUnknownError`.
  No I/O: the async and sync clients run the same plan.

`sign` is the native signature: lowercase hex HMAC-SHA256(secret, timestamp + METHOD +
path[?query] + body), the gateway's scheme (`X-CB-APIKEY`, `X-CB-TIMESTAMP`,
`X-CB-SIGNATURE`).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

import msgspec

from crossbook.client.errors import (
    ApiError,
    CrossbookError,
    OutcomeUnknownError,
    TransportError,
    api_error,
)
from crossbook.domain.rejects import Reject

T = TypeVar("T")

_encode = msgspec.json.Encoder().encode


def sign(secret: str, timestamp: int, method: str, path: str, body: bytes) -> str:
    message = f"{timestamp}{method}{path}".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class Safety(enum.Enum):
    IDEMPOTENT = "idempotent"
    DEDUPED = "deduped"
    UNSAFE = "unsafe"


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    method: str
    path: str
    result: Any
    """The msgspec type the answer decodes to (`Order`, `list[Trade]`, ...)."""
    query: Mapping[str, str | int | None] = field(default_factory=dict)
    body: Any = None
    signed: bool = True
    safety: Safety = Safety.IDEMPOTENT
    lookup: Call[T] | None = None
    conflicts: frozenset[int] = frozenset()

    @property
    def target(self) -> str:
        """Path and query exactly as sent (and signed)."""
        params = {k: v for k, v in self.query.items() if v is not None}
        return f"{self.path}?{urlencode(params)}" if params else self.path

    @property
    def content(self) -> bytes:
        return b"" if self.body is None else _encode(self.body)

    def decode(self, content: bytes) -> T:
        value: T = msgspec.json.decode(content, type=self.result)
        return value


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 4
    backoff: float = 0.05
    """First pause in seconds; doubled after each attempt."""
    max_backoff: float = 1.0
    max_wait: float = 2.0
    """Longest `Retry-After` (429) waited for before giving up."""


@dataclass(frozen=True, slots=True)
class Send:
    call: Call[Any]


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content: bytes
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class Failure:
    message: str
    sent: bool
    """False when the request surely never reached the node (connection refused)."""


Step = Send | Sleep
Outcome = Answer | Failure | None


class _Error(msgspec.Struct):
    code: int = int(Reject.GATEWAY_BAD_REQUEST)
    message: str = ""


def error_of(answer: Answer) -> ApiError:
    try:
        body = msgspec.json.decode(answer.content, type=_Error)
    except msgspec.MsgspecError:
        text = answer.content.decode("utf-8", "replace")[:200]
        body = _Error(int(Reject.GATEWAY_BAD_REQUEST), text or f"HTTP {answer.status}")
    return api_error(answer.status, body.code, body.message, answer.retry_after)


def _find(lookup: Call[T]) -> Generator[Step, Outcome, T | None]:
    """The answer of a lookup: the value, None when not found; unknown raises."""
    outcome = yield Send(lookup)
    if isinstance(outcome, Answer):
        if outcome.status < 300:
            return lookup.decode(outcome.content)
        if outcome.status == 404:
            return None
        raise error_of(outcome)
    raise OutcomeUnknownError(f"could not check the outcome of a request: {outcome}")


def plan(call: Call[T], policy: RetryPolicy) -> Generator[Step, Outcome, T]:
    ambiguous = False
    last: CrossbookError | None = None
    for attempt in range(max(1, policy.attempts)):
        if attempt:
            pause = min(policy.max_backoff, policy.backoff * 2 ** (attempt - 1))
            if isinstance(last, ApiError) and last.retry_after is not None:
                pause = max(pause, last.retry_after)
            yield Sleep(pause)
        if ambiguous and call.lookup is not None:
            found = yield from _find(call.lookup)
            if found is not None:
                return found
        outcome = yield Send(call)
        if isinstance(outcome, Answer):
            if outcome.status < 300:
                return call.decode(outcome.content)
            error = error_of(outcome)
            if ambiguous and error.code in call.conflicts:
                if call.lookup is None:
                    raise error
                found = yield from _find(call.lookup)
                if found is not None:
                    return found
                raise error
            if error.status == 503 and error.code == Reject.GATEWAY_THROTTLED:
                last = error
                continue
            if error.status == 429 and (error.retry_after or 0) <= policy.max_wait:
                last = error
                continue
            raise error
        assert isinstance(outcome, Failure)
        last = TransportError(outcome.message, sent=outcome.sent)
        if outcome.sent and call.safety is Safety.UNSAFE:
            raise OutcomeUnknownError(
                f"{call.method} {call.path} may have been applied: {outcome.message}"
            )
        ambiguous = ambiguous or (outcome.sent and call.safety is Safety.DEDUPED)
    assert last is not None
    raise last
