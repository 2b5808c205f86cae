"""`ListenKeys`: user-data stream keys shared by the REST gateway and the WebSocket server.

One registry per node lives on `GatewayContext.listen_keys`. The Binance dialect creates,
extends and closes keys (`POST`/`PUT`/`DELETE /api/v3/userDataStream`); the WebSocket server
resolves `WS/ws/<listenKey>` to an account with `account_of` and may register `on_close`
callbacks to end streams whose key was closed or expired.

Contract:
- A key is 64 URL-safe random characters, bound to one account and to the API key that
  created it; it lives `TTL_MS` (60 minutes) from its creation or last keepalive.
- `create` returns the account's live key (extending it) when it has one, as Binance does.
- Keys are memory only: a restarted node has none, and clients create new ones (Binance
  clients already do so whenever a keepalive fails).
- Expiry is lazy: `account_of` and `sweep` drop expired keys and fire `on_close` for them.

Time is passed in (ms since the epoch), so the registry itself reads no clock.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

TTL_MS = 60 * 60_000


@dataclass(slots=True)
class ListenKey:
    key: str
    account: int
    api_key: str
    expires_ms: int


@dataclass(slots=True)
class ListenKeys:
    keys: dict[str, ListenKey] = field(default_factory=dict)
    on_close: list[Callable[[ListenKey], None]] = field(default_factory=list)
    """Called with every key that is closed or found expired."""

    def create(self, account: int, api_key: str, now_ms: int) -> str:
        for found in self.keys.values():
            if found.account == account and found.expires_ms > now_ms:
                found.expires_ms = now_ms + TTL_MS
                return found.key
        key = secrets.token_urlsafe(48)
        self.keys[key] = ListenKey(key, account, api_key, now_ms + TTL_MS)
        return key

    def keepalive(self, key: str, account: int, now_ms: int) -> bool:
        """Extend a live key of `account`; False if there is no such key."""
        found = self._live(key, now_ms)
        if found is None or found.account != account:
            return False
        found.expires_ms = now_ms + TTL_MS
        return True

    def close(self, key: str, account: int, now_ms: int) -> bool:
        found = self._live(key, now_ms)
        if found is None or found.account != account:
            return False
        del self.keys[key]
        self._closed(found)
        return True

    def account_of(self, key: str, now_ms: int) -> int | None:
        """The account a live key streams for, or None."""
        found = self._live(key, now_ms)
        return None if found is None else found.account

    def sweep(self, now_ms: int) -> None:
        for found in [k for k in self.keys.values() if k.expires_ms <= now_ms]:
            del self.keys[found.key]
            self._closed(found)

    def _live(self, key: str, now_ms: int) -> ListenKey | None:
        found = self.keys.get(key)
        if found is not None and found.expires_ms <= now_ms:
            del self.keys[key]
            self._closed(found)
            return None
        return found

    def _closed(self, found: ListenKey) -> None:
        for callback in self.on_close:
            callback(found)
