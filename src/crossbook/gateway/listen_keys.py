"""`ListenKeys`: user-data stream keys shared by the REST gateway and the WebSocket server.

One registry per node lives on `GatewayContext.listen_keys`. The Binance dialect creates,
extends and closes keys (`POST`/`PUT`/`DELETE /api/v3/userDataStream`) through the context's
`ListenKeyOps`; the WebSocket server resolves `WS/ws/<listenKey>` to an account with
`account_of` and may register `on_close` callbacks to end streams whose key was closed or
expired.

With gateway workers (`crossbook serve --workers N`) the core's registry is the authority:
workers send create, keepalive and close to the core over the feed (`crossbook.worker`),
and every change of the core's registry (`on_change`) reaches each worker's copy, which
follows it with `mirror`. So a key created through one worker is kept alive through
another and streams from whichever process a WebSocket connection lands on.

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
from typing import Protocol

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
    on_change: list[Callable[[ListenKey], None]] = field(default_factory=list)
    """Called with every key created, extended, closed or found expired (`expires_ms` 0 when
    it is gone); not for changes that arrive through `mirror`."""

    def create(self, account: int, api_key: str, now_ms: int) -> str:
        for found in self.keys.values():
            if found.account == account and found.expires_ms > now_ms:
                found.expires_ms = now_ms + TTL_MS
                self._changed(found)
                return found.key
        key = secrets.token_urlsafe(48)
        created = self.keys[key] = ListenKey(key, account, api_key, now_ms + TTL_MS)
        self._changed(created)
        return key

    def keepalive(self, key: str, account: int, now_ms: int) -> bool:
        """Extend a live key of `account`; False if there is no such key."""
        found = self._live(key, now_ms)
        if found is None or found.account != account:
            return False
        found.expires_ms = now_ms + TTL_MS
        self._changed(found)
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

    def mirror(self, state: ListenKey) -> None:
        """Follow the authority's registry: set `state`, or drop the key when `expires_ms` is 0
        (firing `on_close`)."""
        if state.expires_ms > 0:
            self.keys[state.key] = state
            return
        found = self.keys.pop(state.key, None)
        if found is not None:
            self._closed(found, notify=False)

    def live(self, now_ms: int) -> list[ListenKey]:
        return [k for k in self.keys.values() if k.expires_ms > now_ms]

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

    def _closed(self, found: ListenKey, *, notify: bool = True) -> None:
        for callback in self.on_close:
            callback(found)
        if notify and self.on_change:
            self._changed(ListenKey(found.key, found.account, found.api_key, 0))

    def _changed(self, found: ListenKey) -> None:
        for callback in self.on_change:
            callback(found)


class ListenKeyOps(Protocol):
    """How the REST routes create, extend and close keys: on the registry of this process
    (`LocalListenKeyOps`), or on the core's from a gateway worker."""

    async def create(self, account: int, api_key: str) -> str: ...

    async def keepalive(self, key: str, account: int) -> bool: ...

    async def close(self, key: str, account: int) -> bool: ...


@dataclass(slots=True)
class LocalListenKeyOps:
    keys: ListenKeys
    now_ms: Callable[[], int]

    async def create(self, account: int, api_key: str) -> str:
        return self.keys.create(account, api_key, self.now_ms())

    async def keepalive(self, key: str, account: int) -> bool:
        return self.keys.keepalive(key, account, self.now_ms())

    async def close(self, key: str, account: int) -> bool:
        return self.keys.close(key, account, self.now_ms())
