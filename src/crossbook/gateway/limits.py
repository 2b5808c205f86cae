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


class _Counter:
    __slots__ = ("counts", "limit", "name", "window_ms")

    def __init__(self, window_ms: int, limit: int, name: str) -> None:
        self.window_ms = window_ms
        self.limit = limit
        self.name = name
        self.counts: dict[object, list[int]] = {}

    def entry(self, who: object, now_ms: int) -> list[int]:
        """`who`'s [window start, count] in the current window (a new one starts at 0)."""
        start = now_ms - now_ms % self.window_ms
        entry = self.counts.get(who)
        if entry is None or entry[0] != start:
            if len(self.counts) > 100_000:
                self.counts = {k: v for k, v in self.counts.items() if v[0] == start}
            entry = self.counts[who] = [start, 0]
        return entry

    def refuse(self, now_ms: int) -> RateLimited:
        reset_ms = now_ms - now_ms % self.window_ms + self.window_ms - now_ms
        retry = max(1, -(-reset_ms // 1000))
        return RateLimited(
            f"rate limit exceeded: {self.limit} {self.name}; retry in {retry} s", retry
        )


_WEIGHT_HEADER = b"x-cb-used-weight-1m"
_TEN_HEADER = b"x-cb-order-count-10s"
_DAY_HEADER = b"x-cb-order-count-1d"


class _Budget:
    __slots__ = ("day", "minute", "ten")

    def __init__(self, weight_per_minute: int, orders_per_10s: int, orders_per_day: int) -> None:
        self.minute = _Counter(MINUTE_MS, weight_per_minute, "request weight per minute")
        self.ten = _Counter(TEN_SECONDS_MS, orders_per_10s, "orders per 10 s")
        self.day = _Counter(DAY_MS, orders_per_day, "orders per day")

    def spend(
        self, who: object, now_ms: int, weight: int, orders: int
    ) -> RateLimited | Usage:
        """Count and return the usage (weight, orders in 10 s, orders today; 0, 0 without
        orders), or the refusal, counting nothing unless every budget allows it."""
        # runs twice per REST request (IP, then key): straight-line code
        minute = self.minute
        weight_entry = minute.entry(who, now_ms)
        used_weight = weight_entry[1] + weight
        if minute.limit and used_weight > minute.limit:
            return minute.refuse(now_ms)
        if not orders:
            weight_entry[1] = used_weight
            return used_weight, 0, 0
        ten, day = self.ten, self.day
        ten_entry, day_entry = ten.entry(who, now_ms), day.entry(who, now_ms)
        used_ten, used_day = ten_entry[1] + orders, day_entry[1] + orders
        if ten.limit and used_ten > ten.limit:
            return ten.refuse(now_ms)
        if day.limit and used_day > day.limit:
            return day.refuse(now_ms)
        weight_entry[1], ten_entry[1], day_entry[1] = used_weight, used_ten, used_day
        return used_weight, used_ten, used_day

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
