"""Rate limits per API key and per client IP, in fixed windows.

Three budgets, each per key and per IP (configurable, 0 disables one):
- request weight per minute (every route has a weight, 1 by default);
- orders per 10 seconds and orders per day (routes that place or amend orders).

`charge` counts the request first and refuses it when any budget would go over: 429
(`GATEWAY_RATE_LIMITED`) with `Retry-After` (seconds until the window that overflowed
resets). Every response carries the usage so far: `X-CB-USED-WEIGHT-1M`,
`X-CB-ORDER-COUNT-10S`, `X-CB-ORDER-COUNT-1D` (the key's, or the IP's for public calls).

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


@dataclass(frozen=True, slots=True)
class LimitConfig:
    key_weight_per_minute: int = 6_000
    key_orders_per_10s: int = 100
    key_orders_per_day: int = 200_000
    ip_weight_per_minute: int = 12_000
    ip_orders_per_10s: int = 0
    ip_orders_per_day: int = 0


class _Counter:
    __slots__ = ("counts", "limit", "window_ms")

    def __init__(self, window_ms: int, limit: int) -> None:
        self.window_ms = window_ms
        self.limit = limit
        self.counts: dict[object, list[int]] = {}

    def used(self, who: object, now_ms: int, amount: int) -> tuple[int, int]:
        """(count after adding `amount`, ms until the window resets); not yet committed."""
        start = now_ms - now_ms % self.window_ms
        entry = self.counts.get(who)
        if entry is None or entry[0] != start:
            if len(self.counts) > 100_000:
                self.counts = {k: v for k, v in self.counts.items() if v[0] == start}
            entry = self.counts[who] = [start, 0]
        return entry[1] + amount, start + self.window_ms - now_ms

    def add(self, who: object, amount: int) -> None:
        self.counts[who][1] += amount


class _Budget:
    __slots__ = ("day", "minute", "ten")

    def __init__(self, weight_per_minute: int, orders_per_10s: int, orders_per_day: int) -> None:
        self.minute = _Counter(MINUTE_MS, weight_per_minute)
        self.ten = _Counter(TEN_SECONDS_MS, orders_per_10s)
        self.day = _Counter(DAY_MS, orders_per_day)

    def charge(self, who: object, now_ms: int, weight: int, orders: int) -> Headers:
        checks = [(self.minute, weight, "request weight per minute")]
        if orders:
            checks += [(self.ten, orders, "orders per 10 s"), (self.day, orders, "orders per day")]
        usage = []
        for counter, amount, name in checks:
            used, reset_ms = counter.used(who, now_ms, amount)
            if counter.limit and used > counter.limit:
                retry = max(1, -(-reset_ms // 1000))
                raise ApiError(
                    429, Reject.GATEWAY_RATE_LIMITED,
                    f"rate limit exceeded: {counter.limit} {name}; retry in {retry} s",
                    [(b"retry-after", str(retry).encode())],
                )
            usage.append(used)
        for counter, amount, _ in checks:
            counter.add(who, amount)
        headers = [(b"x-cb-used-weight-1m", str(usage[0]).encode())]
        if orders:
            headers.append((b"x-cb-order-count-10s", str(usage[1]).encode()))
            headers.append((b"x-cb-order-count-1d", str(usage[2]).encode()))
        return headers


class RateLimiter:
    def __init__(self, config: LimitConfig, now_ms: Callable[[], int]) -> None:
        self.config = config
        self.now_ms = now_ms
        self._keys = _Budget(
            config.key_weight_per_minute, config.key_orders_per_10s, config.key_orders_per_day
        )
        self._ips = _Budget(
            config.ip_weight_per_minute, config.ip_orders_per_10s, config.ip_orders_per_day
        )

    def charge_ip(self, ip: str, weight: int, orders: int = 0) -> Headers:
        return self._ips.charge(ip, self.now_ms(), weight, orders)

    def charge_key(self, key: str, weight: int, orders: int = 0) -> Headers:
        return self._keys.charge(key, self.now_ms(), weight, orders)
