"""Generated API keys and secrets: unique, the documented length, safe on a command line."""

from __future__ import annotations

from crossbook.gateway.native.admin import new_key_pair


def test_keys_and_secrets_never_start_with_a_dash() -> None:
    # One draw in 64 would start with "-" from plain URL-safe base64; 4,000 draws would
    # all but surely show it (the CLI reads such a key as an option).
    pairs = [new_key_pair() for _ in range(2_000)]
    for key, secret in pairs:
        assert len(key) == 32
        assert len(secret) == 64
        assert not key.startswith("-")
        assert not secret.startswith("-")
    assert len({key for key, _ in pairs}) == len(pairs)
