"""`ListenKeys`: lifetime of user-data stream keys, and the copy a gateway worker keeps of the
core's registry (`on_change` on the authority, `mirror` on the copy)."""

from __future__ import annotations

import asyncio

from crossbook.gateway.listen_keys import TTL_MS, ListenKey, ListenKeys, LocalListenKeyOps


def test_a_key_lives_ttl_from_its_last_keepalive_and_create_returns_the_live_one() -> None:
    keys = ListenKeys()
    key = keys.create(7, "api-7", now_ms=1_000)
    assert len(key) == 64
    assert keys.create(7, "api-7", now_ms=2_000) == key  # extended, not a second key
    assert keys.account_of(key, 2_000 + TTL_MS - 1) == 7
    assert keys.keepalive(key, 7, now_ms=3_000)
    assert not keys.keepalive(key, 8, now_ms=3_000)  # another account's key
    assert keys.account_of(key, 3_000 + TTL_MS) is None  # expired, dropped
    assert not keys.keepalive(key, 7, now_ms=3_000)


def test_the_copy_follows_every_change_of_the_authority() -> None:
    authority, copy = ListenKeys(), ListenKeys()
    closed: list[str] = []
    copy.on_close.append(lambda k: closed.append(k.key))
    authority.on_change.append(
        lambda k: copy.mirror(ListenKey(k.key, k.account, k.api_key, k.expires_ms)))
    key = authority.create(7, "api-7", now_ms=1_000)
    assert copy.account_of(key, 1_000) == 7
    authority.keepalive(key, 7, now_ms=5_000)
    assert copy.keys[key].expires_ms == 5_000 + TTL_MS
    assert authority.close(key, 7, now_ms=6_000)
    assert copy.account_of(key, 6_000) is None
    assert closed == [key]
    # expiry found by the authority reaches the copy as well
    other = authority.create(9, "api-9", now_ms=10_000)
    authority.sweep(10_000 + TTL_MS)
    assert other not in copy.keys
    assert closed == [key, other]


def test_mirror_changes_do_not_echo_and_live_lists_unexpired_keys() -> None:
    keys = ListenKeys()
    echoed: list[ListenKey] = []
    keys.on_change.append(echoed.append)
    keys.mirror(ListenKey("k" * 64, 3, "api-3", 50_000))
    keys.mirror(ListenKey("j" * 64, 4, "api-4", 10_000))
    assert [k.key for k in keys.live(20_000)] == ["k" * 64]
    keys.mirror(ListenKey("k" * 64, 3, "api-3", 0))
    assert echoed == []
    assert "k" * 64 not in keys.keys


def test_local_ops_use_the_registry_with_the_clock_given() -> None:
    keys = ListenKeys()
    ops = LocalListenKeyOps(keys, lambda: 1_000)

    async def run() -> None:
        key = await ops.create(5, "api-5")
        assert await ops.keepalive(key, 5)
        assert await ops.close(key, 5)
        assert not await ops.close(key, 5)

    asyncio.run(run())
