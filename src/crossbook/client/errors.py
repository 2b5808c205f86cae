"""The SDK's exceptions: every failure is a `CrossbookError`.

- `ApiError`: the server answered with its error shape `{"code", "message"}`; `code` is the
  stable wire code (`crossbook.domain.rejects.Reject` when known, else the raw int), `status`
  the HTTP status, `retry_after` the server's `Retry-After` in seconds when it sent one.
  `RejectedError` (4xx: the request was refused and changed nothing), `RateLimitedError`
  (429) and `UnavailableError` (503) narrow it.
- `TransportError`: the node could not be reached, or the connection broke before an answer
  (after the retries the policy allows). `sent` tells whether the request may have arrived.
- `OutcomeUnknownError`: a non-idempotent request may or may not have been applied and the
  SDK could not find out (no client id to look it up by).
"""

from __future__ import annotations

from crossbook.domain.rejects import Reject


class CrossbookError(Exception):
    """Base of every SDK error."""


class ApiError(CrossbookError):
    def __init__(
        self, status: int, code: int, message: str, retry_after: float | None = None
    ) -> None:
        self.status = status
        self.code: Reject | int = _reject(code)
        self.message = message
        self.retry_after = retry_after
        name = self.code.name if isinstance(self.code, Reject) else "UNKNOWN"
        super().__init__(f"{status} {name} ({int(code)}): {message}")

    @property
    def reject(self) -> Reject | None:
        return self.code if isinstance(self.code, Reject) else None


class RejectedError(ApiError):
    """4xx other than 429: the request was refused and nothing changed."""


class RateLimitedError(ApiError):
    """429: a rate limit; retry after `retry_after` seconds."""


class UnavailableError(ApiError):
    """503: the node is throttling (inbox full) or not accepting commands."""


class TransportError(CrossbookError):
    def __init__(self, message: str, *, sent: bool) -> None:
        self.sent = sent
        super().__init__(message)


class OutcomeUnknownError(CrossbookError):
    """A request that is not safe to repeat may have been applied; check before retrying."""


def _reject(code: int) -> Reject | int:
    try:
        return Reject(code)
    except ValueError:
        return code


def api_error(
    status: int, code: int, message: str, retry_after: float | None = None
) -> ApiError:
    kind: type[ApiError] = (
        RateLimitedError if status == 429
        else UnavailableError if status == 503
        else RejectedError if 400 <= status < 500
        else ApiError
    )
    return kind(status, code, message, retry_after)
