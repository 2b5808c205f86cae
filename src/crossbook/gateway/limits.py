"""Rate limits per API key and per client IP, in fixed windows.

Three budgets, each per key and per IP (configurable, 0 disables one):
- request weight per minute (every route has a weight, 1 by default);
- orders per 10 seconds and orders per day (routes that place or amend orders).

`charge` counts the request first and refuses it when any budget would go over: 429
(`GATEWAY_RATE_LIMITED`) with `Retry-After` (seconds until the window that overflowed
resets). Every response carries the usage so far: `X-CB-USED-WEIGHT-1M`,
`X-CB-ORDER-COUNT-10S`, `X-CB-ORDER-COUNT-1D` (the key's, or the IP's for public calls).

One policy for every order-entry path: REST (native and Binance), WebSocket and binary
charge the same per-key budgets of the one `RateLimiter` of their process, so a key's
requests and orders count together whichever way they arrive. A WebSocket or binary
order-entry request weighs what its REST route weighs (`ORDER_ENTRY_WEIGHT`); placing and
amending also count one order (`charge_key`'s `orders`), cancels do not. Those paths call
`spend_key`, which counts like `charge_key` but returns the refusal as a `RateLimited` value
(code `GATEWAY_RATE_LIMITED`) instead of raising, and builds no usage headers. With every
key budget disabled (0) it counts nothing at all: there is nothing to refuse, and the usage
headers of REST responses then show REST usage only.

Windows are aligned to the epoch (a minute starts at :00), like Binance's. The tables forget
counters of past windows lazily; memory is O(active keys + IPs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from crossbook.domain.rejects import Reject
from crossbook.gateway.http import ApiError, Headers

MINUTE_MS = 60_000
TEN_SECONDS_MS = 10_000
DAY_MS = 86_400_000
ORDER_ENTRY_WEIGHT = 1
"""The weight of one WebSocket or binary order-entry request (its REST route's weight)."""
Usage = tuple[int, int, int]
"""A count's usage so far: request weight this minute, orders in 10 s, orders today (the order
counts are 0 for a request that placed none)."""


@dataclass(frozen=True, slots=True)
class LimitConfig:
    key_weight_per_minute: int = 6_000
    key_orders_per_10s: int = 100
    key_orders_per_day: int = 200_000
    ip_weight_per_minute: int = 12_000
    ip_orders_per_10s: int = 0
    ip_orders_per_day: int = 0


@dataclass(frozen=True, slots=True)
class RateLimited:
    """A request refused by a budget; nothing of it was counted."""

    message: str
    retry_after_s: int
    """Seconds until the window that overflowed resets (at least 1)."""
    code: Reject = Reject.GATEWAY_RATE_LIMITED

    def error(self) -> ApiError:
        """The HTTP form: 429 with `Retry-After`."""
        return ApiError(429, self.code, self.message,
                        [(b"retry-after", b"%d" % self.retry_after_s)])


def _refusal(now_ms: int, window_ms: int, limit: int, name: str) -> RateLimited:
    reset_ms = now_ms - now_ms % window_ms + window_ms - now_ms
    retry = max(1, -(-reset_ms // 1000))
    return RateLimited(f"rate limit exceeded: {limit} {name}; retry in {retry} s", retry)


_WEIGHT_HEADER = b"x-cb-used-weight-1m"
_TEN_HEADER = b"x-cb-order-count-10s"
_DAY_HEADER = b"x-cb-order-count-1d"
_WEIGHT_NAME = "request weight per minute"
_TEN_NAME = "orders per 10 s"
_DAY_NAME = "orders per day"


class _Budget:
    """Each `who`'s counts in one list: [minute start, weight, 10 s start, orders, day start,
    orders] (a window's count restarts at 0 when its start moves on)."""

    __slots__ = ("day_limit", "entries", "minute_limit", "ten_limit")

    def __init__(self, weight_per_minute: int, orders_per_10s: int, orders_per_day: int) -> None:
        self.minute_limit = weight_per_minute
        self.ten_limit = orders_per_10s
        self.day_limit = orders_per_day
        self.entries: dict[object, list[int]] = {}

    def spend(self, who: object, now_ms: int, weight: int, orders: int) -> RateLimited | Usage:
        """Count and return the usage (weight, orders in 10 s, orders today; 0, 0 without
        orders), or the refusal, counting nothing unless every budget allows it."""
        # runs twice per REST request (IP, then key): straight-line code
        entry = self.entries.get(who)
        if entry is None:
            entry = self._new(who, now_ms)
        minute = now_ms - now_ms % MINUTE_MS
        if entry[0] != minute:
            entry[0], entry[1] = minute, 0
        used_weight = entry[1] + weight
        if self.minute_limit and used_weight > self.minute_limit:
            return _refusal(now_ms, MINUTE_MS, self.minute_limit, _WEIGHT_NAME)
        if not orders:
            entry[1] = used_weight
            return used_weight, 0, 0
        ten = now_ms - now_ms % TEN_SECONDS_MS
        if entry[2] != ten:
            entry[2], entry[3] = ten, 0
        day = now_ms - now_ms % DAY_MS
        if entry[4] != day:
            entry[4], entry[5] = day, 0
        used_ten, used_day = entry[3] + orders, entry[5] + orders
        if self.ten_limit and used_ten > self.ten_limit:
            return _refusal(now_ms, TEN_SECONDS_MS, self.ten_limit, _TEN_NAME)
        if self.day_limit and used_day > self.day_limit:
            return _refusal(now_ms, DAY_MS, self.day_limit, _DAY_NAME)
        entry[1], entry[3], entry[5] = used_weight, used_ten, used_day
        return used_weight, used_ten, used_day

    def _new(self, who: object, now_ms: int) -> list[int]:
        entries = self.entries
        if len(entries) >= 100_000:  # forget whoever has no count in a current window
            minute, day = now_ms - now_ms % MINUTE_MS, now_ms - now_ms % DAY_MS
            self.entries = entries = {
                k: v for k, v in entries.items() if v[0] == minute or (v[4] == day and v[5])
            }
        entry = entries[who] = [-1, 0, -1, 0, -1, 0]
        return entry

    def count(self, who: object, now_ms: int, weight: int, orders: int) -> Usage:
        spent = self.spend(who, now_ms, weight, orders)
        if isinstance(spent, RateLimited):
            raise spent.error()
        return spent

    def charge(self, who: object, now_ms: int, weight: int, orders: int) -> Headers:
        return usage_headers(self.count(who, now_ms, weight, orders))


def usage_headers(used: Usage) -> Headers:
    """The usage headers of a count (the order counts only when the request placed one)."""
    used_weight, used_ten, used_day = used
    if not used_ten:
        return [(_WEIGHT_HEADER, b"%d" % used_weight)]
    return [(_WEIGHT_HEADER, b"%d" % used_weight), (_TEN_HEADER, b"%d" % used_ten),
            (_DAY_HEADER, b"%d" % used_day)]


class RateLimiter:
    """The budgets of one process; every gateway of the process shares it."""

    def __init__(self, config: LimitConfig, now_ms: Callable[[], int]) -> None:
        self.config = config
        self.now_ms = now_ms
        self._keys = _Budget(
            config.key_weight_per_minute, config.key_orders_per_10s, config.key_orders_per_day
        )
        self._ips = _Budget(
            config.ip_weight_per_minute, config.ip_orders_per_10s, config.ip_orders_per_day
        )
        self._keys_limited = bool(
            config.key_weight_per_minute or config.key_orders_per_10s or config.key_orders_per_day
        )

    def charge_ip(self, ip: str, weight: int, orders: int = 0) -> Headers:
        """Count a request of `ip`; usage headers, or `ApiError` 429 when over a budget."""
        return self._ips.charge(ip, self.now_ms(), weight, orders)

    def count_ip(self, ip: str, weight: int, orders: int = 0) -> Usage:
        """`charge_ip` without building headers (`usage_headers` makes them when needed)."""
        return self._ips.count(ip, self.now_ms(), weight, orders)

    def charge_key(self, key: str, weight: int, orders: int = 0) -> Headers:
        """Count a request of `key`; usage headers, or `ApiError` 429 when over a budget."""
        return self._keys.charge(key, self.now_ms(), weight, orders)

    def spend_key(
        self, key: str, weight: int = ORDER_ENTRY_WEIGHT, orders: int = 0
    ) -> RateLimited | None:
        """Count a request of `key` like `charge_key`: None, or the refusal as a value."""
        if not self._keys_limited:
            return None
        spent = self._keys.spend(key, self.now_ms(), weight, orders)
        return spent if isinstance(spent, RateLimited) else None
